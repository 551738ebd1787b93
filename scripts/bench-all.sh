#!/usr/bin/env bash
# Every benchmark table in docs/benchmarks.md, one command (issue #13). Builds in release,
# runs each benchmark in turn (they share the machine's cores, so never two at once), and
# writes what each prints to target/bench-all/NAME.md; a summary of what ran is printed last.
#
#   scripts/bench-all.sh              everything, about 30 minutes after the builds on 2 cores
#   scripts/bench-all.sh street push  only the named ones
#
# Names: street (sections 1-5: load, first syncs, incremental, throughput, phone latencies),
# phone_growth, push_cpu (server CPU per pushed change), hydrate (one household's hydration),
# acks (bytes per ack), push_checks (4c), ledger (4d: the ledger writer alone), figures (4d: the
# dashboard's figures over a street's rows), baselines (automerge-repo and PouchDB side by side;
# needs Node.js 20+ and npm), district (PostgreSQL and nginx behind several server processes;
# needs the packages scripts/setup.sh installs). Servers listen on 127.0.0.1 only; each
# benchmark stops by itself and removes its temporary directories.
# Exit 1 with a message naming the benchmark that failed; the others still run.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$root/target/bench-all"
mkdir -p "$out"
all=(street phone_growth push_cpu hydrate acks push_checks ledger figures baselines district)
wanted=("$@")
((${#wanted[@]})) || wanted=("${all[@]}")
for name in "${wanted[@]}"; do
    [[ " ${all[*]} " == *" $name "* ]] || { echo "bench-all: unknown benchmark '$name' (one of: ${all[*]})" >&2; exit 1; }
done

run() {
    local name=$1
    shift
    echo "bench-all: $name: $*" >&2
    local started=$SECONDS
    if (cd "$root" && "$@") >"$out/$name.md" 2>"$out/$name.log"; then
        echo "bench-all: $name done in $((SECONDS - started)) s -> $out/$name.md" >&2
        return 0
    fi
    echo "bench-all: $name FAILED after $((SECONDS - started)) s; see $out/$name.log" >&2
    return 1
}

failed=()
for name in "${wanted[@]}"; do
    case $name in
    street) run street cargo bench -p gridlink-tests --bench street ;;
    phone_growth) run phone_growth cargo bench -p gridlink-tests --bench phone_growth ;;
    push_cpu) run push_cpu cargo run --release -q -p gridlink-sync-server --example push_cpu ;;
    hydrate) run hydrate cargo run --release -q -p gridlink-shared --example hydrate_bench ;;
    acks) run acks cargo run --release -q -p gridlink-sync-server --example ack_bytes ;;
    push_checks) run push_checks cargo run --release -q -p gridlink-sync-server --example push_checks ;;
    ledger) run ledger cargo run --release -q -p gridlink-sync-server --example ledger_bench ;;
    figures) run figures cargo run --release -q -p gridlink-shared --example figures_street ;;
    baselines) GRIDLINK_BASELINES_OUT="$out/baselines.md" run baselines-run scripts/bench-baselines.sh ;;
    district) run district cargo bench -p gridlink-tests --bench district ;;
    esac || failed+=("$name")
done
echo "bench-all: tables in $out" >&2
if ((${#failed[@]})); then
    echo "bench-all: failed: ${failed[*]}" >&2
    exit 1
fi
