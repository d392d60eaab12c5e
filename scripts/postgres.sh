#!/usr/bin/env bash
# Start and stop a throw-away PostgreSQL server on loopback for the tests.
# Usage: source scripts/postgres.sh; start_postgres; ...; stop_postgres
# Exports TFLAT_TEST_POSTGRES_URL.

PG_PORT="${PG_PORT:-54329}"
PG_DIR="${PG_DIR:-/tmp/tflat-pg-$PG_PORT}"

_pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

_as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  local bin; bin="$(_pg_bin)"
  [ -n "$bin" ] || { echo "postgres.sh: PostgreSQL is not installed" >&2; return 1; }
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql postgres
  fi
  _as_pg "$bin/pg_ctl" -D "$PG_DIR" stop -m immediate >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"; mkdir -p "$PG_DIR"
  [ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
  _as_pg "$bin/initdb" -D "$PG_DIR" -U tflat --auth=trust -E UTF8 >/dev/null
  _as_pg "$bin/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off" start >/dev/null
  _as_pg "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U tflat tflat_test
  export TFLAT_TEST_POSTGRES_URL="postgresql+psycopg://tflat@127.0.0.1:$PG_PORT/tflat_test"
  echo "PostgreSQL running: $TFLAT_TEST_POSTGRES_URL"
}

stop_postgres() {
  local bin; bin="$(_pg_bin)"
  [ -n "$bin" ] && _as_pg "$bin/pg_ctl" -D "$PG_DIR" stop -m fast >/dev/null 2>&1 || true
}
