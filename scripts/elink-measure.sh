#!/usr/bin/env bash
# Measures the residents' e-link end to end (a measurement, not a test): for embedded SQLite
# (one `serve --data` process) and PostgreSQL (two `serve --database` processes on one
# database, the buildings' links spread over both), 20 filings one after another and then 80
# filings 8 at a time, each a real form GET (for its nonce) and POST with curl on 127.0.0.1.
# The servers run with `--trusted-proxy 127.0.0.1` and every POST says it comes from its own
# address in `X-Forwarded-For`, so the per-address limit (30 posts per 10 minutes) does not
# cut the run short; no building takes more than 8 (the cap is 20 per hour).
#
#   cargo build -p gridlink-sync-server --bin gridlink-server [--release]
#   scripts/elink-measure.sh [target/debug/gridlink-server]
#
# Needs Debian's postgresql (scripts/setup.sh), curl and python3; run as root (the throwaway
# cluster runs as the `postgres` user) or as a user that may run initdb. Everything lives in
# a temporary directory and is stopped and removed at exit.
set -euo pipefail
SERVER=$(realpath "${1:-target/debug/gridlink-server}")
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
W=$(mktemp -d /tmp/gridlink-elink-measure.XXXXXX)
chmod 755 "$W"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
mkdir "$W/pg" && { [ "$(id -u)" != 0 ] || chown postgres "$W/pg"; }
cleanup() {
  # The servers, by the pids `serve` recorded (they run in command substitutions, not as jobs).
  if [ -f "$W/pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$W/pids"
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$W/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT
as_pg "$PG_BIN/initdb" -D "$W/pg/data" -A trust -U postgres >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$W/pg/data" -o "-k $W/pg -c listen_addresses=''" -l "$W/pg/log" -w start >/dev/null
as_pg "$PG_BIN/createdb" -h "$W/pg" -U postgres gridlink
URL="postgresql:///gridlink?host=$W/pg&user=postgres"
"$SERVER" init --database "$URL" --demo small >/dev/null 2>&1
"$SERVER" init --data "$W/sqlite" --demo small >/dev/null 2>&1

# Starts `serve STORE --listen 127.0.0.1:0 --trusted-proxy 127.0.0.1`; prints its base URL.
serve() {
  local out="$W/serve.$RANDOM"
  "$SERVER" serve "$@" --listen 127.0.0.1:0 --trusted-proxy 127.0.0.1 >"$out" 2>/dev/null &
  echo $! >>"$W/pids"
  for _ in $(seq 100); do
    if grep -q '^listening on ' "$out"; then sed -n 's/^listening on //p' "$out"; return; fi
    sleep 0.1
  done
  echo "the server did not start" >&2
  exit 1
}

# One filing: the form's nonce, then the POST from client address number $3; prints the POST's
# status and seconds.
file_one() {
  local url=$1 phone=$2 from=$3 nonce
  nonce=$(curl -s "$url" | grep -o 'name="nonce" value="[0-9a-f]*"' | grep -o '[0-9a-f]\{32\}')
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X POST "$url" \
    -H "X-Forwarded-For: 36.112.$((from / 250 % 250)).$((from % 250))" \
    --data-urlencode category=utilities --data-urlencode 'description=厨房水管接头漏水，请师傅上门看看。' \
    --data-urlencode room=2单元301 --data-urlencode name=王秀兰 --data-urlencode "phone=$phone" \
    --data-urlencode "nonce=$nonce"
}
export -f file_one

report() { # label, kind, file, [start and end of the wall time]
  python3 - "$@" <<'PY'
import sys
label, kind, path, *span = sys.argv[1:]
wall = float(span[1]) - float(span[0]) if span else None
rows = [l.split() for l in open(path) if l.strip()]
codes = {}
for code, _ in rows:
    codes[code] = codes.get(code, 0) + 1
t = sorted(float(s) * 1000 for _, s in rows)
q = lambda f: t[min(len(t) - 1, int(f * len(t)))]
rate = f", {len(rows) / wall:.1f} filings/s" if wall else ""
print(f"{label:9} {kind:11} n={len(rows):3} statuses={codes} POST p50={q(.5):.0f} ms p99={q(.99):.0f} ms max={t[-1]:.0f} ms{rate}")
PY
}

measure() { # label, store flag, store value, base URLs...
  local label=$1 flag=$2 store=$3; shift 3
  local bases=("$@") links=() i=0 ids start end
  ids=$("$SERVER" roster "$flag" "$store" --json 2>/dev/null | python3 -c 'import json,sys
r = json.load(sys.stdin)
print(" ".join(b["id"] for s in r["streets"] for c in s["communities"] for g in c["grids"] for b in g["buildings"]))')
  for id in $ids; do
    links+=("$("$SERVER" building link "$flag" "$store" --building "$id" --base-url "${bases[$((i % ${#bases[@]}))]}" 2>/dev/null)")
    i=$((i + 1))
  done
  if [ "${#links[@]}" -lt 20 ]; then echo "the demo has ${#links[@]} buildings; 20 needed" >&2; exit 1; fi
  for n in $(seq 0 19); do file_one "${links[$((n % 10))]}" 13807316688 "$n"; done >"$W/$label-serial"
  report "$label" "one by one" "$W/$label-serial"
  start=$(date +%s.%N)
  for n in $(seq 0 79); do echo "${links[$((10 + n % 10))]} $((100 + n))"; done |
    xargs -P 8 -L1 bash -c 'file_one "$0" 13974120099 "$1"' >"$W/$label-eight"
  end=$(date +%s.%N)
  report "$label" "8 at once" "$W/$label-eight" "$start" "$end"
}

measure sqlite --data "$W/sqlite" "$(serve --data "$W/sqlite")"
measure postgres --database "$URL" "$(serve --database "$URL")" "$(serve --database "$URL")"
echo "requests filed on PostgreSQL: $(as_pg "$PG_BIN/psql" -h "$W/pg" -U postgres -d gridlink -Atc \
  "SELECT COUNT(*) FROM elink_requests WHERE nonce NOT LIKE 'demo:%'") (100 expected)"
