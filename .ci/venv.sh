#!/usr/bin/env bash
# Make the venv DIR, with the Python .ci/python.sh picks, where there is none with pip in
# it: one cut short (Ctrl-C while it was made, a Python without ensurepip) is made again,
# emptied first only where it is a venv already (its pyvenv.cfg), never another folder.
# A venv with pip is kept, whatever made it. Quiet when there is nothing to do.
# Usage: bash .ci/venv.sh NAME DIR   (NAME: who says it, e.g. run.sh)
set -euo pipefail
who=$1
venv=$2
if "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  exit 0
fi
python=$(bash "$(dirname "$0")/python.sh" "$who") || exit 2
clear=()
[ -f "$venv/pyvenv.cfg" ] && clear=(--clear)
"$python" -m venv "${clear[@]}" "$venv"
