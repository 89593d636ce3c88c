#!/usr/bin/env bash
# Install the pinned real MCP servers (npm) that the MCP door's tests run over stdio
# (tests/integration/mcp/), into <repo>/.cache/mcp-servers. Idempotent: skipped when the
# marker records the same pins.
# Usage: bash tests/mcp_servers.sh   (needs node and npm on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  "@modelcontextprotocol/server-everything@2026.8.31"
  # The filesystem server: roots, a folder given by the config, what an agent may widen.
  "@modelcontextprotocol/server-filesystem@2026.8.31"
  # The TypeScript SDK the CLIs build their MCP clients on: the door is held to it too.
  "@modelcontextprotocol/sdk@1.32.2"
)
prefix="$PWD/.cache/mcp-servers"
marker="$prefix/.installed"
bin="$prefix/node_modules/.bin"
wanted="${packages[*]}"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "tests/mcp_servers.sh: $tool is needed on PATH to install the MCP servers" >&2
    exit 2
  fi
done

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$wanted" ] && [ -x "$bin/mcp-server-everything" ] \
  && [ -x "$bin/mcp-server-filesystem" ] \
  && [ -d "$prefix/node_modules/@modelcontextprotocol/sdk" ]; then
  echo "== MCP servers already installed ($wanted)"
else
  echo "== installing MCP servers into $prefix: $wanted"
  mkdir -p "$prefix"
  rm -f "$marker"
  npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "${packages[@]}"
  printf '%s' "$wanted" >"$marker"
fi
echo "MCP server binaries: $bin"
