#!/usr/bin/env bash
# The run command from the README: installs what is needed, builds, starts a local sync server
# with the `small` demo dataset on 127.0.0.1, enrols a demo grid worker's device and opens
# the app on it. Data lives in .demo/ (delete it to start over). Ctrl-C or closing the
# window stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

cargo build --bins -p gridlink-sync-server -p gridlink-cli -p gridlink-app
bin=target/debug
server_data=.demo/server
phone_data=.demo/phone
port=${GRIDLINK_PORT:-8470}

if [[ ! -f "$server_data/server.db" ]]; then
  mkdir -p "$server_data"
  "$bin/gridlink-server" init --data "$server_data" --demo small
fi

log=.demo/server.log
"$bin/gridlink-server" serve --data "$server_data" --listen "127.0.0.1:$port" >"$log.out" 2>"$log" &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "listening on" "$log.out" 2>/dev/null && break
  kill -0 $server_pid 2>/dev/null || { echo "server failed to start:"; cat "$log"; exit 1; }
  sleep 0.1
done
url=$(grep -o "http://[0-9.:]*" "$log.out" | head -n1)
echo "sync server: $url (log: $log)"

# The supervisors' console: the demo's first supervisor gets a demo password once.
supervisor=$("$bin/gridlink-server" user list --data "$server_data" --json |
  python3 -c 'import json,sys; u=next(u for u in json.load(sys.stdin) if u["role"]=="supervisor"); print(u["id"], u["phone"])')
if [[ ! -f .demo/console-password ]]; then
  echo "gridlink-demo-2026" | "$bin/gridlink-server" user password --data "$server_data" --user "${supervisor% *}" >/dev/null
  echo "gridlink-demo-2026" >.demo/console-password
fi
echo "console: $url/console  (login ${supervisor#* }, password $(cat .demo/console-password))"

if ! "$bin/gridlink" --data "$phone_data" status --json 2>/dev/null | grep -q '"enrolled": *true'; then
  worker=$("$bin/gridlink-server" user list --data "$server_data" --json |
    python3 -c 'import json,sys; print(next(u["id"] for u in json.load(sys.stdin) if u["role"]=="grid-worker"))')
  code=$("$bin/gridlink-server" user code --data "$server_data" --user "$worker" | tail -n1)
  "$bin/gridlink" --data "$phone_data" enroll --server "$url" --code "$code" --name "演示手机"
fi
"$bin/gridlink" --data "$phone_data" sync || echo "first sync failed; the app retries in the background"

"$bin/gridlink-app" --data "$phone_data"
