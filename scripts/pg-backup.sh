#!/usr/bin/env bash
# Backs up a Gridlink PostgreSQL database with pg_dump (custom format, compressed) and checks
# that the file is a complete, readable archive before calling it done.
#   scripts/pg-backup.sh URL DIR     e.g. scripts/pg-backup.sh 'postgresql:///gridlink?host=/run/postgresql' /srv/backups
# Writes DIR/gridlink-YYYYmmdd-HHMMSS.dump (and .sha256), prints the file's path last.
# Keeps the newest $KEEP dumps in DIR (default 14) and removes older ones.
# One dump is one consistent snapshot (pg_dump runs in a single REPEATABLE READ transaction),
# so servers may keep serving while it runs. Exit status is non-zero on any failure, and a
# failed dump never replaces or prunes an earlier one.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 DATABASE_URL BACKUP_DIR" >&2
  exit 2
fi
url=$1
dir=$2
keep=${KEEP:-14}
[[ "$keep" =~ ^[1-9][0-9]*$ ]] || { echo "pg-backup: KEEP must be a positive number, not '$keep'" >&2; exit 2; }

mkdir -p "$dir"
stamp=$(date -u +%Y%m%d-%H%M%S)
final="$dir/gridlink-$stamp.dump"
partial="$final.partial"
trap 'rm -f "$partial"' EXIT

# --no-owner/--no-privileges: the dump restores into a database owned by whichever role the
# restoring site uses.
pg_dump --dbname="$url" --format=custom --compress=6 --no-owner --no-privileges --file="$partial"
# A truncated or corrupt archive fails to list; check before it counts as a backup.
pg_restore --list "$partial" >/dev/null
grep_tables=$(pg_restore --list "$partial" | grep -c " TABLE DATA " || true)
if [[ "$grep_tables" -eq 0 ]]; then
  echo "pg-backup: the dump holds no table data; is '$url' a Gridlink database?" >&2
  exit 1
fi
mv "$partial" "$final"
(cd "$dir" && sha256sum "$(basename "$final")" >"$(basename "$final").sha256")

# Prune: newest first, keep $keep.
mapfile -t old < <(ls -1 "$dir"/gridlink-*.dump 2>/dev/null | sort -r | tail -n +"$((keep + 1))")
for f in "${old[@]}"; do
  rm -f "$f" "$f.sha256"
done
echo "pg-backup: $grep_tables tables, $(du -h "$final" | cut -f1) in" >&2
echo "$final"
