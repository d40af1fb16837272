"""The replication proxy: what a signed-in device's `/db/<app>/...` request goes through.

One package because these modules change together: `proxy` runs the checks every request passes
and dispatches it by its table; the allow-list (`paths`) decides what may pass, the body checks
(`writes` with `policy`, `request_shapes`, `changes_filter`, `multipart`) refuse what CouchDB
could not read or the owner may not write, `databases` creates, repairs and deletes the user's
database, `stream` streams the rest to it and back; `changes_watch`, `changes_hub`,
`changes_feed` and `feeds` hold the live `_changes` feeds, and `upstream_errors` turns an
upstream's failure into the answer a CouchDB client expects.
"""
