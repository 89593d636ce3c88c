#!/usr/bin/env bash
# Set up what Fleetwarden's embedded default needs on this machine, then run it: the
# console on this terminal, agents sandboxed with bubblewrap, state in ./.fleetwarden/.
# Usage: bash run.sh [fleetwarden run options...]   (e.g. --config fleetwarden.yaml)
# Idempotent and quiet when everything is there. bubblewrap is installed with apt-get
# (as root, or through sudo); where that cannot be done, `fleetwarden run` says at start
# exactly what to install, and refuses sandboxed agents until it is.
# FLEETWARDEN_VENV: the virtualenv to use (default: .venv next to this file).
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
venv=${FLEETWARDEN_VENV:-$root/.venv}

# The default backend runs agents as processes (tmux only for `backend: tmux`).
bash "$root/.ci/apt-packages.sh" bwrap=bubblewrap || true

# Installed in place (editable); again only when the project's dependencies change.
stamp="$venv/.fleetwarden-pyproject.toml"
if [ ! -x "$venv/bin/fleetwarden" ] || ! cmp -s "$root/pyproject.toml" "$stamp"; then
  echo "== installing fleetwarden into $venv"
  # Made with $PYTHON, else the system's Python, else python3; again where it has no pip.
  bash "$root/.ci/venv.sh" run.sh "$venv" || exit 2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root"
  cp "$root/pyproject.toml" "$stamp"
fi
exec "$venv/bin/fleetwarden" run "$@"
