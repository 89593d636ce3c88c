#!/usr/bin/env bash
# Install the pinned matrix-js-sdk (with its Rust crypto) that tests/matrix_js/operator.mjs runs
# on — Element's own client stack — into <repo>/.cache/matrix-js, from the committed lockfile
# tests/matrix_js/package-lock.json. Idempotent: skipped when the marker records that lockfile.
# Usage: bash tests/matrix_js.sh   (needs node 20+ and npm on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."

source_dir="$PWD/tests/matrix_js"
prefix="$PWD/.cache/matrix-js"
marker="$prefix/.installed"

for tool in node npm sha256sum; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "tests/matrix_js.sh: $tool is needed on PATH to install matrix-js-sdk" >&2
    exit 2
  fi
done

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "tests/matrix_js.sh: matrix-js-sdk 37.5 needs Node.js 20 or newer (found $(node --version))" >&2
  exit 2
fi

wanted="$(sha256sum "$source_dir/package-lock.json" | cut -d' ' -f1)"
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$wanted" ] \
  && [ -f "$prefix/node_modules/matrix-js-sdk/package.json" ]; then
  echo "== matrix-js-sdk already installed (lockfile $wanted)"
else
  echo "== installing matrix-js-sdk into $prefix from tests/matrix_js/package-lock.json"
  mkdir -p "$prefix"
  rm -f "$marker"
  cp "$source_dir/package.json" "$source_dir/package-lock.json" "$prefix/"
  (cd "$prefix" && npm ci --no-audit --no-fund --loglevel=error)
  printf '%s' "$wanted" >"$marker"
fi
echo "matrix-js-sdk modules: $prefix/node_modules"
