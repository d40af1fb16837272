#!/bin/sh
# Writes CouchDB's [jwt_keys] from the environment, then hands over to the image's own
# entrypoint. An ini file cannot read environment variables and CouchDB wants the HMAC key in
# base64, so the secret shared with couchgate (COUCHGATE_JWT_SECRET, from .env) is turned into
# an ini file at each start instead of being written into the repository.
set -eu

: "${COUCHGATE_JWT_SECRET:?set COUCHGATE_UPSTREAM_JWT_SECRET in .env}"
ini=/opt/couchdb/etc/local.d/zz-couchgate-jwt.ini
umask 077
key=$(printf '%s' "$COUCHGATE_JWT_SECRET" | base64 | tr -d '\n')
printf '[jwt_keys]\nhmac:_default = %s\n' "$key" > "$ini"
chown couchdb:couchdb "$ini"
unset COUCHGATE_JWT_SECRET key

exec /docker-entrypoint.sh "$@"
