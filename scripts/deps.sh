#!/usr/bin/env bash
# Installs what building and testing nagare needs on Debian, if missing
# (`deps.sh demo`: only what `make demo` needs):
# Go ≥ 1.26 must already be on PATH (or in /usr/local/go); PostgreSQL (for
# the PostgreSQL test pass), ffmpeg (camera snapshots and test streams),
# Chromium and CJK fonts (browser tests of the console) come from Debian's
# packages; Node.js ≥ 20 with npm builds the console (Debian 12's own
# nodejs is 18, too old for Vite: install Node.js 20 from nodejs.org or
# NodeSource if `node --version` says less).
set -euo pipefail
export PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null; then
  echo "deps.sh: Go 1.26 or newer is required (https://go.dev/dl/), not found on PATH" >&2
  exit 1
fi
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
# `deps.sh demo` (make demo) needs only what running the demo takes:
# ffmpeg for the simulated camera and npm for the console.
need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v npm >/dev/null || need+=(nodejs npm)
if [ "${1:-}" != demo ]; then
  ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || need+=(postgresql)
  command -v chromium >/dev/null || need+=(chromium)
  fc-list 2>/dev/null | grep -qi 'Noto Sans CJK' || need+=(fonts-noto-cjk)
fi
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
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "deps.sh: Node.js 20 or newer is required to build the web console (found $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
(cd web && npm ci --no-audit --no-fund --loglevel=error)
