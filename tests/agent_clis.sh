#!/usr/bin/env bash
# Install the pinned real agent CLIs (npm) that tests/integration/runtimes/test_real_clis.py runs,
# into <repo>/.cache/agent-clis. Idempotent: skipped when the marker records the same pins.
# Usage: bash tests/agent_clis.sh   (needs node and npm on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  "@anthropic-ai/claude-code@2.1.197"
  "@openai/codex@0.169.0"
  "@mariozechner/pi-coding-agent@0.73.1"
  "opencode-ai@1.18.33"
)
prefix="$PWD/.cache/agent-clis"
marker="$prefix/.installed"
bin="$prefix/node_modules/.bin"
wanted="${packages[*]}"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "tests/agent_clis.sh: $tool is needed on PATH to install the agent CLIs" >&2
    exit 2
  fi
done

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$wanted" ] \
  && [ -x "$bin/claude" ] && [ -x "$bin/codex" ] && [ -x "$bin/pi" ] && [ -x "$bin/opencode" ]; then
  echo "== agent CLIs already installed ($wanted)"
else
  echo "== installing agent CLIs into $prefix: $wanted"
  mkdir -p "$prefix"
  rm -f "$marker"
  npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "${packages[@]}"
  printf '%s' "$wanted" >"$marker"
fi
echo "agent CLI binaries: $bin"
