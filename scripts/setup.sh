#!/usr/bin/env bash
# Installs what Gridlink needs on Debian/Ubuntu, idempotently: fast when all is present.
#   scripts/setup.sh          build + test needs (C toolchain, webkit2gtk for the desktop app,
#                             Chromium and chromedriver for the console's browser tests,
#                             PostgreSQL for the server's second store: the tests start a
#                             throwaway cluster of their own, the system one is never started;
#                             nginx as the load balancer of the failover test, started by it)
#   scripts/setup.sh --ui     also Xvfb, xdotool, ImageMagick and a CJK font (screenshots)
set -euo pipefail

packages=(build-essential pkg-config libssl-dev libwebkit2gtk-4.1-dev libxdo-dev libsoup-3.0-dev libgtk-3-dev
  fonts-wqy-microhei chromium chromium-driver postgresql nginx-light)
if [[ "${1:-}" == "--ui" ]]; then
  packages+=(xvfb xdotool imagemagick x11-utils)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: system packages already present"
fi

if ! command -v cargo >/dev/null 2>&1; then
  [[ -x "$HOME/.cargo/bin/cargo" ]] || {
    echo "setup: installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
  }
  export PATH="$HOME/.cargo/bin:$PATH"
fi
echo "setup: $(cargo --version)"
