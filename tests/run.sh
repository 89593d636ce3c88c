#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run all of it:
# lint, types, unit tests and the integration tests against real components.
# Usage: bash tests/run.sh [pytest args...]
set -euo pipefail
here=$(pwd)  # where it was run from: for a path given from there, the hint below
cd "$(dirname "$0")/.."
root=$(pwd)

# A test path that is not there: said now, naming it (with five workers, pytest would only
# say "no tests ran"). Paths are from the checkout's root, as pytest takes them here, wherever
# this is run from: every word that is not an option or an option's value is a path (give
# an option this does not know here its value with `=`: `--opt=value`).
value=false
for word in "$@"; do
  if $value; then
    value=false
    continue
  fi
  case "$word" in
    -k | -m | -p | -n | -o | -W | -c | -r | --ignore | --ignore-glob | --deselect | \
      --basetemp | --junitxml | --junit-xml | --log-file | --rootdir | --confcutdir | \
      --durations | --maxfail | --tb | --log-level | --log-cli-level | --timeout | --dist | \
      --override-ini | --capture | --import-mode | --cov | --cov-report)
      value=true
      ;;
    -*) ;;
    *)
      path=${word%%::*}
      if [ ! -e "$path" ]; then
        hint="paths start at the checkout's root, e.g. tests/unit/bot/cli"
        if [ "$here" != "$root" ] && [ -e "$here/$path" ]; then
          hint="paths start at the checkout's root: ${here#"$root"/}/$path"
        fi
        echo "tests/run.sh: no test file or directory $path (a typo? $hint)" >&2
        exit 2
      fi
      ;;
  esac
done

# tmux: the console is tested at a real terminal, and the tmux backend uses it.
# bubblewrap: every agent runs in a sandbox.
bash .ci/apt-packages.sh --strict tmux=tmux bwrap=bubblewrap || exit 2
# Installed above, and CI runs as root: a test that needs the sandbox (bubblewrap, root,
# control groups) fails, never skips (FLEETWARDEN_REQUIRE_SANDBOX=0 lets it skip).
export FLEETWARDEN_REQUIRE_SANDBOX=${FLEETWARDEN_REQUIRE_SANDBOX:-1}
# PostgreSQL: the ledger's tests run on it as well as on SQLite (tests/postgres_server.py).
# Its programs are not on PATH (/usr/lib/postgresql/N/bin); FLEETWARDEN_PG_BIN names others.
if [ -z "${FLEETWARDEN_PG_BIN:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  bash .ci/apt-packages.sh --strict fleetwarden-no-initdb=postgresql || exit 2
fi
export FLEETWARDEN_REQUIRE_POSTGRES=${FLEETWARDEN_REQUIRE_POSTGRES:-1}  # installed above: never skip
# OpenSSH: the hosts' tests run against real sshd servers on 127.0.0.2-4 (tests/sshd_server.py).
bash .ci/apt-packages.sh --strict /usr/sbin/sshd=openssh-server || exit 2
export FLEETWARDEN_REQUIRE_SSHD=${FLEETWARDEN_REQUIRE_SSHD:-1}
# Those hosts' users run the agent CLIs installed in this checkout (.cache/agent-clis): every
# directory above it must let them pass. A checkout under `mktemp -d` (mode 0700) would not,
# so as root each one gets search permission (x, never read) for others.
if [ "$(id -u)" = 0 ]; then
  dir=$(pwd)
  while [ "$dir" != / ]; do
    chmod o+x "$dir"
    dir=$(dirname "$dir")
  done
fi
# Chromium: the dashboard is tested in a real browser, Debian's, driven by Playwright (which
# never downloads a browser of its own here: tests/integration/dashboard_rig.py points it at
# /usr/bin/chromium, or FLEETWARDEN_CHROMIUM).
if [ -z "${FLEETWARDEN_CHROMIUM:-}" ]; then
  bash .ci/apt-packages.sh --strict /usr/bin/chromium=chromium || exit 2
fi
export FLEETWARDEN_REQUIRE_CHROMIUM=${FLEETWARDEN_REQUIRE_CHROMIUM:-1}

# Python's bytecode, kept under .cache/pycache (never beside the sources): the tests start
# `fleetwarden` (and other Python programs) over and over, and where PYTHONDONTWRITEBYTECODE
# is set each start would compile the ~1,600 modules it imports again (seconds of CPU).
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX=${PYTHONPYCACHEPREFIX:-$PWD/.cache/pycache}

# The venvs are made with $PYTHON, else the system's Python (built with profile-guided
# optimisation where it is Debian's or Ubuntu's: the suite's Python processes each spend
# about a fifth less CPU on it), else python3 on PATH; again where one has no pip
# (.ci/venv.sh, .ci/python.sh).
bash .ci/venv.sh tests/run.sh .venv || exit 2
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'

# Synapse, the real homeserver the Matrix tests run against (tests/synapse_server.py).
# It is AGPL-3.0: test-only, in its own venv, never installed into .venv.
# Skipped when FLEETWARDEN_SKIP_SYNAPSE=1 or FLEETWARDEN_SYNAPSE_PYTHON names another one.
synapse_version=1.163.2
if [ "${FLEETWARDEN_SKIP_SYNAPSE:-}" != 1 ] && [ -z "${FLEETWARDEN_SYNAPSE_PYTHON:-}" ]; then
  bash .ci/venv.sh tests/run.sh .venv-synapse || exit 2
  if ! .venv-synapse/bin/python -c "import importlib.metadata as m, sys
sys.exit(m.version('matrix-synapse') != '$synapse_version')" 2>/dev/null; then
    echo "== installing matrix-synapse==$synapse_version into .venv-synapse"
    .venv-synapse/bin/python -m pip install --quiet --disable-pip-version-check \
      "matrix-synapse==$synapse_version"
  fi
fi

# The real agent CLIs (pinned npm packages) that tests/integration/runtimes/test_real_clis.py runs
# against the fake provider; installed into .cache/agent-clis (needs node and npm).
bash tests/agent_clis.sh
# The real MCP servers (pinned npm packages) the MCP door's tests run over stdio
# (tests/integration/mcp/); installed into .cache/mcp-servers (needs node and npm).
bash tests/mcp_servers.sh
# matrix-js-sdk with its Rust crypto (Element's client stack), pinned by
# tests/matrix_js/package-lock.json, that the Matrix tests' js operator runs on
# (tests/matrix_js_user.py); installed into .cache/matrix-js (needs node 20+ and npm).
bash tests/matrix_js.sh
# GitHub's REST description and webhook examples the forge fakes are held to.
bash tests/forge_data.sh
# Slack's Web API and event types as JSON Schema, which the fake Slack is held to.
bash tests/slack_data.sh
# Gitea's and Forgejo's renderer (goldmark, built from Debian's Go and sources), which what
# Fleetwarden posts on a forge is held to beside GitHub's cmark-gfm.
bash tests/goldmark.sh

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
# Test files run side by side in five workers, each file whole in one of them (its module
# fixtures shared): most integration tests wait on real processes and servers, so more
# workers than cores keep the two cores busy; but each one more also makes every process
# dearer (more of them contend for the same caches). Measured alone on two cores: five
# took 19:27 and 1,969 CPU s where six took 21:05 and ~2,235 (four, earlier, 22:57).
# FLEETWARDEN_TEST_WORKERS=0 runs them one after another, in this process. At the end, the
# 30 slowest tests, the ones to make faster next.
exec .venv/bin/pytest -n "${FLEETWARDEN_TEST_WORKERS:-5}" --dist loadfile --durations=30 "$@"
