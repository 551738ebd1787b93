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
# SCREENSHOTS_PART=method takes only the screens of the 1234 method (21-29); the default takes all.
part=${SCREENSHOTS_PART:-all}
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

launch_app() { # data-dir [screen to open after unlocking]
  "$bin/gridlink-app" --data "$1" ${2:+--open "$2"} >"$work/app.out" 2>"$work/app.err" &
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

if [[ "$part" == all ]]; then
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
start_server "${url##*:}"
fi

# ---- the 1234 method: new arrivals, party and volunteers, wishes, review queue, supervisor ---
cli() { "$bin/gridlink" --data "$1" "${@:2}"; }
enrol_cli() { # data-dir code name
  cli "$1" enroll --server "$url" --code "$2" --name "$3" >/dev/null
  cli "$1" sync >/dev/null
}
worker=$(user_of_role grid-worker)
enrol_cli "$work/w2" "$(code_for "$worker")" "网格员手机"
enrol_cli "$work/w3" "$(code_for "$worker")" "网格员备用机"
enrol_cli "$work/sup" "$(code_for "$(user_of_role supervisor)")" "督导手机"
first_json() { python3 -c "import json,sys; v=[x for x in json.load(sys.stdin) if $1]; print(v[0]['id'])"; }

# Two phones of the grid change the same household's phone offline, then both sync.
conflicted=$(cli "$work/w2" households --json | first_json "x['tags']")
cli "$work/w2" household edit --id "$conflicted" --phone 13907551111 >/dev/null
cli "$work/w3" household edit --id "$conflicted" --phone 13907552222 >/dev/null
cli "$work/w2" sync >/dev/null; cli "$work/w3" sync >/dev/null; cli "$work/w2" sync >/dev/null
cli "$work/sup" sync >/dev/null
wish=$(cli "$work/w2" case open --kind micro-wish --household "$conflicted" --title "想要一台助听器" \
  --note "独居老人听力下降，希望有人帮忙配一台助听器" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

unlock_first() { pin_1234; pin_ok; pin_1234; pin_ok; sleep 4; }
# A store locked with a PIN opens on a keypad placed higher than the set-PIN one. The PIN unwraps
# the database key with Argon2id, which takes seconds in a debug build.
unlock() { tap 82 335 0.2; tap 195 335 0.2; tap 306 335 0.2; tap 82 413 0.2; tap 306 562 6; }

building=$(cli "$work/w2" households --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["building_id"])')
launch_app "$work/w2" "/households/new?building=$building&unit=2&room=1508"
unlock_first
tap 195 404 0.3; write "刘桂兰"
tap 195 488 0.3; write "1390755" # one digit short of a mobile number: the field says so
shot 21-new-arrival
stop_app

launch_app "$work/w2" /party
unlock
shot 22-party
stop_app

launch_app "$work/w2" /party/record
unlock
shot 23-record-service
stop_app

launch_app "$work/w2" "/cases/$wish"
unlock
scroll_down 6
shot 24-micro-wish
stop_app

launch_app "$work/w2" "/households/$conflicted"
unlock
shot 25-review-queue
stop_app

launch_app "$work/sup"
unlock_first
shot 26-supervisor-home
scroll_down 8
shot 27-supervisor-lists
stop_app

# A lost phone, wiped from the server: the next sync erases it.
"$bin/gridlink-server" device wipe --data "$work/server" --device \
  "$(cli "$work/w3" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["device"])')" >/dev/null
launch_app "$work/w3"
unlock_first
tap 337 30 3 # sync
shot 28-wiped
stop_app
log "done: $(ls "$out" | wc -l) screenshots in $out"
