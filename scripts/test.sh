#!/usr/bin/env bash
# The test command from the README: installs what is needed, then runs every test of the
# workspace (domain, server, client core, UI components, end-to-end scenarios).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
# The end-to-end scenarios start the real binaries; build them first, exactly as the tests'
# harness asks for them (tests/src/lib.rs), so its own builds find them fresh.
cargo build -p gridlink-sync-server --bin gridlink-server
cargo build -p gridlink-cli --bin gridlink
cargo test --workspace --exclude gridlink-app
# The end-to-end scenarios again with the server on PostgreSQL (a throwaway cluster each test
# binary starts and removes), the browser ones (console, micro-wishes, e-link) included; the
# files that need the SQLite file itself pin SQLite (see tests/src/lib.rs).
GRIDLINK_TEST_BACKEND=postgres cargo test -p gridlink-tests \
  --test scenarios --test activities --test cli --test conflicts --test new_household --test roster_to_phone \
  --test security --test console_browser --test micro_wish --test elink_browser
