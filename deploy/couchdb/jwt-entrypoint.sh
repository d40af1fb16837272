#!/bin/sh
# Writes CouchDB's [jwt_keys] from the environment, then hands over to the image's own
# entrypoint. An ini file cannot read environment variables and CouchDB wants the HMAC key in
# base64, so the secret shared with couchgate (COUCHGATE_JWT_SECRET, from .env) is turned into
# an ini file at each start instead of being written into the repository.
set -eu

: "${COUCHGATE_JWT_SECRET:?set COUCHGATE_UPSTREAM_JWT_SECRET in .env}"
# Where the image reads its settings, and what runs next; the tests point both elsewhere to run
# this very script against a CouchDB outside Docker.
ini=${COUCHGATE_JWT_INI:-/opt/couchdb/etc/local.d/zz-couchgate-jwt.ini}
next=${COUCHGATE_NEXT_ENTRYPOINT:-/docker-entrypoint.sh}
umask 077
key=$(printf '%s' "$COUCHGATE_JWT_SECRET" | base64 | tr -d '\n')
printf '[jwt_keys]\nhmac:_default = %s\n' "$key" > "$ini"
if id couchdb >/dev/null 2>&1; then chown couchdb:couchdb "$ini"; fi
unset COUCHGATE_JWT_SECRET key

exec "$next" "$@"
