#!/usr/bin/env bash
# Two grid workers, one household, no signal: both edit it offline, then sync and converge.
#
#   scripts/two-worker-demo.sh            # builds, runs in a temporary directory, cleans up
#   KEEP=1 scripts/two-worker-demo.sh     # keep the directory to poke around afterwards
#
# Uses the real gridlink-server (small demo community) on 127.0.0.1 and two gridlink CLI
# clients, each with its own encrypted data directory.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -q -p gridlink-sync-server -p gridlink-cli
SERVER=target/debug/gridlink-server
CLI=target/debug/gridlink
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

step "server: small demo community, serving on a free port"
"$SERVER" init --data "$WORK/server" --demo small | tail -1
"$SERVER" serve --data "$WORK/server" --listen 127.0.0.1:0 > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do grep -q '^listening on' "$WORK/server.log" && break; sleep 0.1; done
URL=$(sed -n 's/^listening on //p' "$WORK/server.log")
echo "$URL"

step "admin: a second grid worker for the first worker's grid, and enrolment codes"
FIRST=$("$SERVER" user list --data "$WORK/server" --json | json '[u for u in d if u["role"]=="grid-worker"][0]["id"]')
GRID=$("$SERVER" user list --data "$WORK/server" --json | json '[u for u in d if u["role"]=="grid-worker"][0]["scopes"][0]')
CODE_A=$("$SERVER" user code --data "$WORK/server" --user "$FIRST" | tail -1)
CODE_B=$("$SERVER" user add --data "$WORK/server" --name 王芳 --role grid-worker --scope "$GRID" | tail -1)
echo "worker A code $CODE_A, worker B (王芳) code $CODE_B, both on $GRID"

step "both phones enrol and sync"
A="$CLI --data $WORK/phone-a"
B="$CLI --data $WORK/phone-b"
$A enroll --server "$URL" --code "$CODE_A" --name phone-a
$B enroll --server "$URL" --code "$CODE_B" --name phone-b
$A sync
$B sync

HH=$($A households --due --json | json 'd[0]["id"]')
echo "household: $($A household show --id "$HH" --json | json 'd["address"] + " " + d["head"]')"

step "offline: A records a visit and tags the household poor-family; B records another visit"
$A visit add --household "$HH" --outcome met --note "上门走访：老人身体尚好，已提醒按时服药"
$A household tag --id "$HH" --add poor-family
$B visit add --household "$HH" --outcome not-home --note "敲门无人应答，已留联系卡"
CASE=$($B case open --kind must-arrive:dispute --household "$HH" --title "楼上漏水引发邻里纠纷" --json | json 'd["id"]')
$B case act --id "$CASE" --action accept --note "已电话联系双方"
$A status
$B status

step "signal is back: A, B, A sync"
$A sync
$B sync
$A sync

step "converged: both exports are byte-identical"
$A export > "$WORK/a.json"
$B export > "$WORK/b.json"
if cmp -s "$WORK/a.json" "$WORK/b.json"; then
    echo "identical ($(wc -c < "$WORK/a.json") bytes)"
else
    diff "$WORK/a.json" "$WORK/b.json" | head -20
    exit 1
fi
$A household show --id "$HH"
$A cases --json | json '"\n".join(c["status"] + " " + c["title"] for c in d if c["id"] == "'"$CASE"'")'
