#!/usr/bin/env bash
# Screenshots of the real desktop window (gridlink-app) under Xvfb at phone size (390x844).
#
# Starts a local sync server with the `small` demo dataset, launches the app on a fresh data
# directory and walks the main flows with xdotool: enrol with a code, set the PIN, today's
# list, record a visit, the household file, open a must-arrive case and act on it, services,
# the identity card, switching to English, a building leader's home and report, the lock
# screen, and going offline. Each step saves a PNG into docs/screenshots/.
#
# Needs: Xvfb, xdotool, imagemagick (import), a CJK font (fonts-wqy-microhei), webkit2gtk.
# Coordinates are those of the 390x844 layout in assets/app.css; if the layout changes, look
# at the PNGs and adjust the numbers below.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

out=docs/screenshots
mkdir -p "$out"
# SCREENSHOTS_NO_BUILD=1 reuses the binaries already in target/debug.
[[ -n "${SCREENSHOTS_NO_BUILD:-}" ]] || cargo build -q --bins -p gridlink-sync-server -p gridlink-cli -p gridlink-app
bin=$PWD/target/debug
work=$(mktemp -d /tmp/gridlink-shots.XXXXXX)
display=":${SCREENSHOT_DISPLAY:-93}"
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

log() { echo "screenshots: $*" >&2; }

# ---- server with demo data ------------------------------------------------------------------
"$bin/gridlink-server" init --data "$work/server" --demo small >/dev/null 2>&1
start_server() {
  "$bin/gridlink-server" serve --data "$work/server" --listen "127.0.0.1:${1:-0}" >"$work/serve.out" 2>"$work/serve.err" &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 1 100); do
    grep -q "listening on" "$work/serve.out" 2>/dev/null && break
    sleep 0.1
  done
  url=$(grep -o "http://[0-9.:]*" "$work/serve.out" | head -n1)
  [[ -n "$url" ]] || { cat "$work/serve.err"; exit 1; }
}
start_server
log "server at $url"
user_of_role() {
  "$bin/gridlink-server" user list --data "$work/server" --json |
    python3 -c "import json,sys; print(next(u['id'] for u in json.load(sys.stdin) if u['role']=='$1'))"
}
code_for() { "$bin/gridlink-server" user code --data "$work/server" --user "$1" | tail -n1; }
worker_code=$(code_for "$(user_of_role grid-worker)")
leader_code=$(code_for "$(user_of_role building-leader)")

# ---- display and helpers --------------------------------------------------------------------
Xvfb "$display" -screen 0 390x844x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
pids+=($!)
export DISPLAY=$display
export GDK_BACKEND=x11
for _ in $(seq 1 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.1; done

launch_app() { # data-dir
  "$bin/gridlink-app" --data "$1" >"$work/app.out" 2>"$work/app.err" &
  app_pid=$!
  pids+=("$app_pid")
  timeout 30 xdotool search --sync --name "网格通" >/dev/null
  sleep 3 # webview load and first render
}
stop_app() { kill "$app_pid" 2>/dev/null || true; wait "$app_pid" 2>/dev/null || true; sleep 0.5; }
shot() { sleep "${2:-0.3}"; import -window root "$out/$1.png"; log "$out/$1.png"; }
tap() { xdotool mousemove "$1" "$2" click 1; sleep "${3:-0.7}"; }
write() { xdotool type --delay 25 "$1"; sleep 0.3; }
scroll_down() { xdotool mousemove 195 450 click --repeat "$1" --delay 60 5; sleep 0.6; }
pin_1234() { tap 84 380 0.2; tap 195 380 0.2; tap 306 380 0.2; tap 84 456 0.2; }
pin_ok() { tap 306 607 1; }
tab() { # today households cases services me
  case $1 in today) tap 39 810 1.2 ;; households) tap 117 810 1.2 ;; cases) tap 195 810 1.2 ;;
    services) tap 273 810 1.2 ;; me) tap 351 810 1.2 ;; esac
}

# ---- grid worker: enrol, PIN, today ---------------------------------------------------------
launch_app "$work/phone"
tap 195 363; write "$url"
tap 195 447; write "$worker_code"
shot 01-enroll
tap 195 533 5 # enrol, then the first sync runs in the background
pin_1234
shot 02-set-pin
pin_ok; pin_1234; pin_ok
sleep 3
shot 03-today

# ---- record a visit -------------------------------------------------------------------------
tap 326 329 1.5 # "走访" on the most urgent household
tap 195 372; write "老人在家，身体还好，需要帮忙联系社区医生上门"
tap 111 483 0.3 # need found: 助医
tap 40 567 0.3  # resident present
shot 04-record-visit
tap 195 727 1.5 # save
shot 05-household-file
tab households
shot 06-households

# ---- open a must-arrive case and act on it --------------------------------------------------
tab cases
tap 325 96 1.2 # + 新建事件
tap 195 270 0.3
xdotool key shift+Tab Home Down # kind: 四必到·家庭纠纷
sleep 0.3
tap 195 270 0.3; write "3栋2单元邻里噪音纠纷"
tap 195 378 0.3; write "楼上装修噪音，双方争执，需尽快到场调解"
shot 07-new-case
tap 195 484 1.5 # submit
shot 08-case-countdown 1.5
tab today
shot 09-today-must-arrive
tap 195 200 1.5 # the must-arrive card
tap 195 483 0.3; write "已到场，双方情绪平稳"
tap 280 633 1.2 # 到场
scroll_down 5
shot 10-case-timeline

# ---- services, identity card, English ------------------------------------------------------
tab services
shot 11-services
tab me
shot 12-me
tap 195 420 1.2 # language
shot 13-me-english
tab today
shot 14-today-english
tab me
tap 195 420 1.2 # back to Chinese
stop_app

# ---- building leader -------------------------------------------------------------------------
"$bin/gridlink" --data "$work/leader" enroll --server "$url" --code "$leader_code" --name "楼栋长手机" >/dev/null
"$bin/gridlink" --data "$work/leader" sync >/dev/null
launch_app "$work/leader"
pin_1234; pin_ok; pin_1234; pin_ok
sleep 1
shot 15-leader-home
tap 100 240 1.2 # 卫生监督: the form opens with the kind and title filled in
tap 195 290 0.3; write "3单元楼道堆放杂物，影响消防通道"
shot 16-leader-report
tap 195 396 1.5 # submit
tab today
scroll_down 10
shot 17-leader-reports
stop_app

# ---- the worker again: locked, then offline -------------------------------------------------
launch_app "$work/phone"
shot 18-unlock
pin_1234; pin_ok
kill "$server_pid"
tab households
tap 195 590 1.5 # a household
tap 109 274 1.5 # 记录走访
tap 195 265 0.3 # 不在家
tap 195 727 1.5
tap 337 30 0.5 # sync while the server is down
shot 19-offline-syncing
sleep 20 # the client retries with backoff, then reports
shot 20-offline
stop_app
log "done: $(ls "$out" | wc -l) screenshots in $out"
