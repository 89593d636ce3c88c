#!/usr/bin/env bash
# Print the Python that makes the project's virtualenvs (run.sh, tests/run.sh):
#   1. $PYTHON, when it is set;
#   2. else the system's Python ($FLEETWARDEN_SYSTEM_PYTHON, default /usr/bin/python3) when
#      it is 3.11 or newer and can make a venv: Debian's and Ubuntu's is built with
#      profile-guided and link-time optimisation, and each of the suite's thousands of
#      Python processes (every `fleetwarden` start, sandbox shim, fake server) spends about
#      a fifth less CPU on it than on one built from source without them (pyenv's default);
#   3. else python3 on PATH.
# Exit 2, saying so and how to fix it, when the one found is older than 3.11.
# Usage: python=$(bash .ci/python.sh NAME) || exit 2   (NAME: who says it, e.g. run.sh)
set -euo pipefail
who=${1:-python.sh}

new_enough='import sys; sys.exit(sys.version_info < (3, 11))'
if [ -n "${PYTHON:-}" ]; then
  python=$PYTHON
else
  python=python3
  system=${FLEETWARDEN_SYSTEM_PYTHON:-/usr/bin/python3}
  if [ -x "$system" ] && "$system" -c "$new_enough; import ensurepip, venv" 2>/dev/null; then
    python=$system
  fi
fi
if ! command -v "$python" >/dev/null 2>&1; then
  echo "$who: no Python $python here (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi
if ! "$python" -c "$new_enough" 2>/dev/null; then
  echo "$who: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi
echo "$python"
