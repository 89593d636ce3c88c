#!/usr/bin/env bash
# The forges' published descriptions and example payloads the forge tests hold their fakes
# to, into <repo>/.cache/forge-data: GitHub's REST description (npm @octokit/openapi) and
# its real webhook examples (npm @octokit/webhooks-examples). Fetched with `npm pack`, which
# runs none of their code. Idempotent: skipped when the marker records the same pins.
# Usage: bash tests/forge_data.sh   (needs npm on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  "@octokit/openapi@23.0.2"
  "@octokit/webhooks-examples@7.6.1"
)
dest="$PWD/.cache/forge-data"
marker="$dest/.installed"
wanted="${packages[*]}"

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$wanted" ]; then
  echo "== forge data already here ($wanted)"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "tests/forge_data.sh: npm is needed on PATH to fetch the forges' descriptions" >&2
  exit 2
fi
echo "== fetching forge data into $dest: $wanted"
rm -rf "$dest"
mkdir -p "$dest/packs"
(cd "$dest/packs" && npm pack --silent --loglevel=error "${packages[@]}" >/dev/null)
mkdir -p "$dest/openapi" "$dest/webhooks-examples"
tar -xzf "$dest"/packs/octokit-openapi-*.tgz -C "$dest/openapi" --strip-components=1 \
  package/generated/api.github.com.json package/package.json
tar -xzf "$dest"/packs/octokit-webhooks-examples-*.tgz -C "$dest/webhooks-examples" \
  --strip-components=1
rm -rf "$dest/packs"
printf '%s' "$wanted" >"$marker"
