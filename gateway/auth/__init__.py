"""Sign-in: the handshake routes, device tokens, the identity records and request authentication."""
