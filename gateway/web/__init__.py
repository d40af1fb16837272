"""Web plumbing shared by every route: the middlewares (errors, CORS, request ids, access log),
bounded request bodies, the welcome page at ``/`` and the links couchgate hands to people."""
