#!/usr/bin/env bash
# The JSON Schemas the fake Slack (tests/fakes/slack/) holds every request, answer and event
# to, into <repo>/.cache/slack-data/schemas/<Type>.json: Slack's own TypeScript types for its
# Web API and events (npm @slack/web-api, @slack/types) turned into JSON Schema by
# ts-json-schema-generator (tests/slack_schemas/). Installed with --ignore-scripts, so no
# package's install script runs. Idempotent: skipped when the marker records the same pins
# and the same list of types.
# Usage: bash tests/slack_data.sh   (needs node 20+ and npm on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  "@slack/web-api@8.2.0"
  "@slack/types@3.2.0"
  "ts-json-schema-generator@2.10.0"
  "typescript@5.9.3"
)
dest="$PWD/.cache/slack-data"
marker="$dest/.installed"
wanted="${packages[*]} $(cksum <tests/slack_schemas/entry.ts)"

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$wanted" ]; then
  echo "== slack data already here (${packages[*]})"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "tests/slack_data.sh: node and npm are needed on PATH to build Slack's schemas" >&2
  exit 2
fi
echo "== building slack data into $dest: ${packages[*]}"
rm -rf "$dest"
mkdir -p "$dest/src"
npm install --silent --no-audit --no-fund --ignore-scripts --loglevel=error \
  --prefix "$dest" "${packages[@]}" >/dev/null
# The entry and its tsconfig sit beside node_modules, so TypeScript resolves the packages.
cp tests/slack_schemas/entry.ts tests/slack_schemas/tsconfig.json tests/slack_schemas/generate.js \
  "$dest/src/"
(cd "$dest/src" && node generate.js "$dest/schemas" "$dest/src" >/dev/null)
printf '%s' "$wanted" >"$marker"
