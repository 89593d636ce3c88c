#!/usr/bin/env bash
# Install the Debian/Ubuntu packages whose programs are missing, with apt-get, as root or
# through sudo. Says nothing when every program is there.
# Usage: bash .ci/apt-packages.sh [--strict] PROGRAM=PACKAGE...
#   e.g. bash .ci/apt-packages.sh bwrap=bubblewrap tmux=tmux
# Where it cannot install (no apt-get; not root and no sudo) it installs nothing and exits
# 3: without --strict it says nothing then (`fleetwarden run` says at start what to
# install, once); with --strict it prints the exact command to run.
set -euo pipefail

strict=""
if [ "${1:-}" = "--strict" ]; then strict=1; shift; fi

missing=""
for pair in "$@"; do
  command -v "${pair%%=*}" >/dev/null 2>&1 || missing="$missing ${pair#*=}"
done
[ -n "$missing" ] || exit 0

if [ "$(id -u)" = 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1; then
  sudo="sudo"
else
  sudo="none"
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$sudo" = none ]; then
  if [ -n "$strict" ]; then
    echo "cannot install$missing here: install it (on Debian/Ubuntu, as root:" \
      "apt-get install -y$missing)" >&2
  fi
  exit 3
fi

echo "== installing$missing (apt-get)"
$sudo apt-get update -qq
# shellcheck disable=SC2086  # one word per package
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
