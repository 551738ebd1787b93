#!/usr/bin/env bash
# Side by side with automerge-repo and PouchDB (issue #13): installs the baselines' npm
# packages into target/bench-node/, builds the Rust driver, then runs
# `cargo bench -p gridlink-tests --bench baselines` (tests/benches/baselines.rs), which starts
# the three servers on 127.0.0.1, runs the same workloads on the same documents, prints the
# Markdown tables and writes them to target/bench-node/baselines.md (GRIDLINK_BASELINES_OUT).
#
# Bounded: the run (builds and npm excluded) is stopped after GRIDLINK_BASELINES_LIMIT seconds
# (default 900). Every process it starts is in one process group, killed on exit.
# Exit 1 with a message naming the problem when anything fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
node_dir="$root/target/bench-node"
limit=${GRIDLINK_BASELINES_LIMIT:-900}

fail() {
    echo "bench-baselines: $*" >&2
    exit 1
}

[[ $limit =~ ^[1-9][0-9]*$ ]] || fail "GRIDLINK_BASELINES_LIMIT=$limit is not a number of seconds"
command -v node >/dev/null || fail "node is not installed (Node.js 20 or newer is needed)"
command -v npm >/dev/null || fail "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || fail "node $(node --version) is too old: Node.js 20 or newer is needed"

echo "bench-baselines: installing the npm packages into $node_dir" >&2
mkdir -p "$node_dir"
cp "$root/bench/baselines/package.json" "$node_dir/package.json"
(cd "$node_dir" && timeout 600 npm install --no-audit --no-fund --loglevel=error >&2) ||
    fail "npm install failed in $node_dir (is the registry reachable?)"
cp "$root"/bench/baselines/*.mjs "$node_dir/"

echo "bench-baselines: building the server and the driver (release)" >&2
(cd "$root" && cargo build --release -p gridlink-sync-server --bin gridlink-server >&2) ||
    fail "cannot build gridlink-server"
(cd "$root" && cargo bench -p gridlink-tests --bench baselines --no-run >&2) ||
    fail "cannot build the baselines benchmark"

echo "bench-baselines: running (at most ${limit}s)" >&2
cd "$root"
rm -rf "$node_dir"/.tmp*
# Its own process group (setsid), so the driver, the servers and the node processes all go
# when the group is killed, whatever state the driver is in.
GRIDLINK_BASELINES_NODE_DIR="$node_dir" setsid cargo bench -p gridlink-tests --bench baselines &
group=$!
# The driver's scratch folders (stores, node data) live in $node_dir/.tmp*: gone with a
# killed run too.
cleanup() {
    kill -KILL -- "-$group" 2>/dev/null || true
    rm -rf "$node_dir"/.tmp*
}
trap cleanup EXIT
deadline=$((SECONDS + limit))
while kill -0 "$group" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
        cleanup
        fail "stopped after ${limit}s (GRIDLINK_BASELINES_LIMIT); no tables written"
    fi
    sleep 1
done
status=0
wait "$group" || status=$?
((status == 0)) || fail "the benchmark failed (exit $status); see the messages above"
echo "bench-baselines: tables in ${GRIDLINK_BASELINES_OUT:-$node_dir/baselines.md}" >&2
