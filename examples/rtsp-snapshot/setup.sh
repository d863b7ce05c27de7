#!/usr/bin/env bash
# Seed 002 (RTSP snapshot by remote command) on a running nagare: registers the
# SIM at the camera's address, stores the RTSP password as the pre-shared key
# the seed's requests name, logs in, and prints the variables the requests use.
# Idempotent: run it again for a fresh token or another address.
#
#   eval "$(examples/rtsp-snapshot/setup.sh)"
#
# Settings (environment):
#   NAGARE_ENDPOINT   nagare's base URL             (default http://127.0.0.1:8080)
#   NAGARE_AUTH_KEY_ID, NAGARE_AUTH_KEY             (default: from data/root-auth-key.json)
#   SIM_ID            the SIM to register           (default 8942310022000012345)
#   CAMERA_HOST       the device's IP or host name  (default 127.0.0.1)
#   RTSP_PASSWORD     the camera's RTSP password    (default password123)
#   CREDENTIALS_ID    the credential to store it in (default credential-id)
#   NAGARE            the nagare binary             (default bin/nagare, else nagare on PATH)
#
# Only `export …` lines go to standard output; progress goes to standard error.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -z "${NAGARE:-}" ]; then
	NAGARE=$repo/bin/nagare
	[ -x "$NAGARE" ] || NAGARE=nagare
fi
export NAGARE_ENDPOINT=${NAGARE_ENDPOINT:-http://127.0.0.1:8080}
SIM_ID=${SIM_ID:-8942310022000012345}
CAMERA_HOST=${CAMERA_HOST:-127.0.0.1}
RTSP_PASSWORD=${RTSP_PASSWORD:-password123}
CREDENTIALS_ID=${CREDENTIALS_ID:-credential-id}

if [ -z "${NAGARE_AUTH_KEY_ID:-}" ]; then
	keyfile=$repo/data/root-auth-key.json
	if [ ! -r "$keyfile" ]; then
		echo "setup.sh: set NAGARE_AUTH_KEY_ID and NAGARE_AUTH_KEY, or start nagare with 'make run' (it writes $keyfile)" >&2
		exit 1
	fi
	NAGARE_AUTH_KEY_ID=$(sed -n 's/.*"authKeyId": *"\([^"]*\)".*/\1/p' "$keyfile")
	NAGARE_AUTH_KEY=$(sed -n 's/.*"authKey": *"\([^"]*\)".*/\1/p' "$keyfile")
fi
export NAGARE_AUTH_KEY_ID NAGARE_AUTH_KEY

# json quotes a string for JSON.
json() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}

# api METHOD PATH < BODY: the request's body comes from standard input, so
# secrets never show in the process list.
api() { "$NAGARE" api -d @- "$1" "$2"; }

# 1. The SIM, at the address nagare reaches the device at: moved there if it
#    exists, registered otherwise.
if ! api PUT "/v1/sims/$SIM_ID" >/dev/null 2>&1 <<<"{\"ipAddress\":$(json "$CAMERA_HOST")}"; then
	api POST /v1/sims >/dev/null <<<"{\"simId\":$(json "$SIM_ID"),\"name\":\"rtsp-snapshot camera\",\"ipAddress\":$(json "$CAMERA_HOST")}"
fi
echo "SIM $SIM_ID → $CAMERA_HOST" >&2

# 2. The RTSP password as a pre-shared key: replaced if it exists, created otherwise.
cred="{\"type\":\"psk\",\"description\":\"RTSP password (examples/rtsp-snapshot)\",\"credentials\":{\"key\":$(json "$RTSP_PASSWORD")}}"
if ! api PUT "/v1/credentials/$CREDENTIALS_ID" >/dev/null 2>&1 <<<"$cred"; then
	api POST "/v1/credentials/$CREDENTIALS_ID" >/dev/null <<<"$cred"
fi
echo "credential $CREDENTIALS_ID (psk) stored" >&2

# 3. An API key and token for the requests' X-Soracom-* headers (24 h).
auth=$(api POST /v1/auth <<<"{\"authKeyId\":$(json "$NAGARE_AUTH_KEY_ID"),\"authKey\":$(json "$NAGARE_AUTH_KEY")}")
api_key=$(sed -n 's/.*"apiKey": *"\([^"]*\)".*/\1/p' <<<"$auth")
token=$(sed -n 's/.*"token": *"\([^"]*\)".*/\1/p' <<<"$auth")
if [ -z "$api_key" ] || [ -z "$token" ]; then
	echo "setup.sh: login failed: $auth" >&2
	exit 1
fi
echo "logged in; the token is valid for 24 h" >&2

printf 'export API=%q\n' "${NAGARE_ENDPOINT%/}/v1"
printf 'export SIM_ID=%q\n' "$SIM_ID"
printf 'export X_SORACOM_API_KEY=%q\n' "$api_key"
printf 'export X_SORACOM_TOKEN=%q\n' "$token"
