#!/usr/bin/env bash
# Restores a dump made by scripts/pg-backup.sh into an EMPTY PostgreSQL database, then lets
# gridlink-server bring the schema up to date and checks it opens.
#   scripts/pg-restore.sh FILE.dump URL [GRIDLINK_SERVER]
# The target database must exist and hold no tables (create it with `createdb`); restoring over
# a live database is refused, since mixing two states loses changes. GRIDLINK_SERVER defaults
# to target/debug/gridlink-server, then `gridlink-server` on PATH.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: $0 BACKUP_FILE DATABASE_URL [GRIDLINK_SERVER]" >&2
  exit 2
fi
file=$1
url=$2
server=${3:-}
if [[ -z "$server" ]]; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  if [[ -x "$here/target/debug/gridlink-server" ]]; then server="$here/target/debug/gridlink-server"; else server=gridlink-server; fi
fi

[[ -f "$file" ]] || { echo "pg-restore: no such file: $file" >&2; exit 1; }
if [[ -f "$file.sha256" ]]; then
  (cd "$(dirname "$file")" && sha256sum --quiet --check "$(basename "$file").sha256") \
    || { echo "pg-restore: $file does not match its .sha256; refusing a damaged backup" >&2; exit 1; }
fi
pg_restore --list "$file" >/dev/null || { echo "pg-restore: $file is not a readable pg_dump archive" >&2; exit 1; }

tables=$(psql --dbname="$url" -XAtc "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
if [[ "$tables" != "0" ]]; then
  echo "pg-restore: the target database already has $tables tables; restore into an empty database" >&2
  exit 1
fi

# One transaction: a failed restore leaves the database empty, not half-filled.
pg_restore --dbname="$url" --no-owner --no-privileges --single-transaction --exit-on-error "$file"
# Opening runs any migrations newer than the dump and refuses a schema newer than the binary.
"$server" init --database "$url"
echo "pg-restore: restored $file into the database" >&2
