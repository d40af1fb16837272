"""The replication proxy: what a signed-in device's `/db/<app>/...` request goes through.

One package because these modules change together: the allow-list (`paths`) decides what may
pass, the body checks (`policy`, `request_shapes`, `changes_filter`, `multipart`) refuse what
CouchDB could not read or the owner may not write, `proxy` streams the rest to the user's
database, `changes_hub` and `feeds` hold the live `_changes` feeds, and `upstream_errors` turns an
upstream's failure into the answer a CouchDB client expects.
"""
