#!/usr/bin/env bash
# Print the Python a new venv of the project is made with (.ci/venv.sh, for run.sh and
# tests/run.sh):
#   1. $PYTHON, when it is set;
#   2. else the system's Python ($FLEETWARDEN_SYSTEM_PYTHON, default /usr/bin/python3) when
#      it is 3.11 or newer and can make a venv: Debian's and Ubuntu's is built with
#      profile-guided and link-time optimisation, and each of the suite's thousands of
#      Python processes (every `fleetwarden` start, sandbox shim, fake server) spends about
#      a fifth less CPU on it than on one built from source without them (pyenv's default);
#   3. else python3 on PATH.
# A venv already there is kept, whatever made it (remove it to make it again).
# Exit 2, saying why and how to fix it, when the one found cannot be run or is older
# than 3.11. Usage: python=$(bash .ci/python.sh NAME) || exit 2   (NAME: who says it)
set -euo pipefail
who=${1:-python.sh}
fix="set PYTHON=/path/to/python3.11"

if [ -n "${PYTHON:-}" ]; then
  python=$PYTHON
else
  python=python3
  system=${FLEETWARDEN_SYSTEM_PYTHON:-/usr/bin/python3}
  if [ -x "$system" ] &&
    "$system" -c "import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))" \
      2>/dev/null; then
    python=$system
  fi
fi
if ! command -v -- "$python" >/dev/null 2>&1; then
  echo "$who: no Python $python here ($fix)" >&2
  exit 2
fi
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])') || version=""
if [ -z "$version" ]; then
  echo "$who: $python did not run as a Python ($fix)" >&2
  exit 2
fi
case "$version" in
  3.1[1-9] | 3.[2-9][0-9] | [4-9].*) ;;
  *)
    echo "$who: $python is Python $version; 3.11 or newer is needed ($fix)" >&2
    exit 2
    ;;
esac
echo "$python"
