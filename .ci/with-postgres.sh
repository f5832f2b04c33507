#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL cluster (Debian's postgresql package) on 127.0.0.1, named by
# KEYLEDGER_TEST_PG, then stops and deletes the cluster. Used by .ci/run to run test suites over PostgreSQL:
#   .ci/with-postgres.sh cargo test --test http_keys
set -euo pipefail
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [[ -z "$PG_BIN" ]]; then
  echo "with-postgres.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 2
fi
PG_DIR="$(mktemp -d /tmp/keyledger-ci-pg-XXXXXX)"
as_postgres() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[[ "$(id -u)" == 0 ]] && chown postgres:postgres "$PG_DIR"
stop() {
  as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
trap stop EXIT
as_postgres "$PG_BIN/initdb" --auth=trust --username=postgres --encoding=UTF8 --no-sync -D "$PG_DIR/data" >/dev/null
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
  -o "-p $PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=400" start >/dev/null
export KEYLEDGER_TEST_PG="postgres://postgres@127.0.0.1:$PORT/postgres"
"$@"
