#!/usr/bin/env bash
# Installs what building and testing nagare needs on Debian, if missing:
# Go ≥ 1.26 must already be on PATH (or in /usr/local/go); PostgreSQL (for
# the PostgreSQL test pass) and ffmpeg (camera snapshots and test streams)
# come from Debian's packages.
set -euo pipefail
export PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null; then
  echo "deps.sh: Go 1.26 or newer is required (https://go.dev/dl/), not found on PATH" >&2
  exit 1
fi
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
need=()
ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || need+=(postgresql)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
if [ ${#need[@]} -gt 0 ]; then
  echo "deps.sh: installing ${need[*]} from Debian's packages"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Camera tests stream real footage: vtest.avi from Debian's opencv-doc
# package, fetched with `apt-get download` (not installed), which needs the
# package lists.
if ! apt-cache show opencv-doc >/dev/null 2>&1; then
  $SUDO apt-get update -qq
fi
go mod download
