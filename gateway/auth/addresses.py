"""Whether a string is an email address a sign-in code may be sent to.

The syntax is the maintained ``email-validator``'s (RFC 5321/5322 with internationalized
addresses, no quoted local parts, no IP literals, no control or bidirectional-override
characters), never DNS: a lookup would let any caller make the server resolve names, and the one
real check is that the code arrives.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

MAX_LENGTH = 254


def is_address(text: str) -> bool:
    if len(text) > MAX_LENGTH:
        return False
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True
