#!/usr/bin/env bash
# Install (if needed), start or stop a throw-away PostgreSQL server on 127.0.0.1:55432.
set -euo pipefail
PGDATA_DIR=${PGDATA_DIR:-/tmp/imageapi-ci-pg}
PORT=55432

find_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/pg_ctl" ] && { echo "$dir"; return; }
  done
  command -v pg_ctl >/dev/null 2>&1 && dirname "$(command -v pg_ctl)"
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}

case "${1:-start}" in
  start)
    BIN=$(find_bin || true)
    if [ -z "$BIN" ] || ! id postgres >/dev/null 2>&1; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq postgresql >/dev/null
      BIN=$(find_bin)
    fi
    rm -rf "$PGDATA_DIR"
    mkdir -p "$PGDATA_DIR"
    chown postgres "$PGDATA_DIR" 2>/dev/null || true
    as_postgres "$BIN/initdb -D $PGDATA_DIR -U postgres --auth=trust >/dev/null"
    as_postgres "$BIN/pg_ctl -D $PGDATA_DIR -o '-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off' -l $PGDATA_DIR/log -w start >/dev/null"
    psql -h 127.0.0.1 -p $PORT -U postgres -qc "CREATE ROLE imageapi LOGIN CREATEDB PASSWORD 'imageapi'"
    echo "PostgreSQL running on 127.0.0.1:$PORT"
    ;;
  stop)
    BIN=$(find_bin)
    as_postgres "$BIN/pg_ctl -D $PGDATA_DIR -m immediate stop >/dev/null" || true
    ;;
esac
