"""The connection to the upstream (CouchDB, or the embedded couchlite store): the shared session and
admin calls (``backend``), what a request carries to act as a member (``member_auth``), running
the embedded store (``embedded``, ``store_cli``) and ``couchgate check`` (``diagnose``)."""
