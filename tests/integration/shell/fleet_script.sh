#!/usr/bin/env bash
# What an operator's script does with the fleet from a shell: spawn an agent, wait for it
# by polling `ps --json`, read it, spawn it again only if absent, stop it; and what a script
# is told of a command it got wrong (2) or may not run (1). Every exit status and JSON
# answer checked. Usage: fleet_script.sh FLEETWARDEN CONFIG PYTHON AGENT
set -u
FW=$1 CONFIG=$2 PY=$3 AGENT=$4
OUT= CODE=

fail() { echo "FAIL: $*" >&2; exit 1; }

# run CODE WORDS...: run `fleetwarden WORDS --config CONFIG`, which must exit CODE; its
# standard output is left in OUT.
run() {
    local want=$1; shift
    OUT=$("$FW" "$@" --config "$CONFIG" 2>"$TMPDIR_/err")
    CODE=$?
    [ "$CODE" = "$want" ] || fail "fleetwarden $* exited $CODE, not $want: $(cat "$TMPDIR_/err")"
}

# field PATH: the value at PATH (dot-separated keys, list indexes) of the JSON in OUT.
field() {
    printf '%s' "$OUT" | "$PY" -c '
import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value[int(key)] if isinstance(value, list) else value[key]
print(value if isinstance(value, str) else json.dumps(value))' "$1"
}

# is PATH VALUE: the JSON in OUT holds VALUE at PATH.
is() {
    local got
    got=$(field "$1") || fail "no $1 in: $OUT"
    [ "$got" = "$2" ] || fail "$1 is $got, not $2, in: $OUT"
}

TMPDIR_=$(mktemp -d)
trap 'rm -rf "$TMPDIR_"' EXIT

run 0 spawn "$AGENT" --json
is ok true
is command spawn
is data.agent "$AGENT"
is data.started true
is data.queued false
RUN=$(field data.run)
[[ "$RUN" =~ ^[0-9]+$ ]] || fail "the run id is $RUN"

for _ in $(seq 200); do  # a deadline of polls, each a round trip to the orchestrator
    run 0 ps --json
    [ "$(field data.agents.0.state)" = running ] && break
done
is data.agents.0.name "$AGENT"
is data.agents.0.state running
is data.agents.0.runtime command
is data.queued 0

for _ in 1 2; do
    run 0 spawn "$AGENT" --if-absent --json
    is ok true
    is data.already_running true
    is data.run "$RUN"
done
run 1 spawn "$AGENT"

run 0 stop "$AGENT" --json
is data.agent "$AGENT"
is data.state stopped
run 0 ps --json
[ "$(field data.agents.0.state)" != running ] || fail "$AGENT still runs after stop: $OUT"

run 0 status --json  # no dashboard in the config: `ps`'s data, from the control socket
is agents.0.name "$AGENT"
[ "$(field agents.0.state)" != running ] || fail "status says $AGENT runs: $OUT"
is enforce warn  # and what the dashboard's status says beyond the agents
is connectors.0.name console
is connectors.0.up true
is connectors.0.last_error null
VERSION=$(field build.version)
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+ ]] || fail "the build's version is $VERSION: $OUT"
is build.commit "$(git -C "$(dirname "$0")" rev-parse --short HEAD)"  # run from the checkout
run 0 status
[[ "$OUT" == *"console up since "* ]] || fail "status does not say the console is up: $OUT"
[[ "$OUT" == *"Fleetwarden $VERSION (commit "* ]] || fail "status does not say the build: $OUT"

run 0 task new --agent "$AGENT" Tidy the docs --json  # chat's `task new`: no data of its own
is ok true
run 0 tasks  # chat's `tasks`, from the orchestrator
[[ "$OUT" == *tidy-the-docs* ]] || fail "tasks does not list the new task: $OUT"
run 0 tasks --json  # the register's documented form, read from the ledger, stays
is tasks.0.title "Tidy the docs"
is tasks.0.agent "$AGENT"

run 2 stop
run 2 spawn "$AGENT" --no-such-flag
run 1 budget set global 5 --json
is ok false
is outcome denied
echo "script: all checks passed"
