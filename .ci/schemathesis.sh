#!/usr/bin/env bash
# Fuzz the served HTTP API against docs/openapi.json (as served at /v1/openapi.json) with schemathesis, after
# validating the served document with openapi-spec-validator (OpenAPI 3.0.3). Two runs, each on a fresh ledger,
# every operation (the event stream in its bounded form), every check, the stateful phase, admin key as bearer:
#   1. "hooks": every phase, with .ci/schemathesis_hooks.py doing what a real client does and JSON Schema cannot
#      say (fresh Idempotency-Keys, future times...); any failure or error fails it.
#   2. "plain": as a tool user runs it, without hooks, seed 7, 30 examples; only the stream's `idle_timeout` is
#      fixed (to 0: answer what is durable, then end), so that no read waits for ever. Its failures are triaged by
#      .ci/schemathesis_triage.py: any outside the by-design classes of docs/API.md ("What a fuzzer reports")
#      fails it.
#
# Usage: .ci/schemathesis.sh [KEYLEDGER_BINARY] [-- EXTRA_SCHEMATHESIS_ARGS...]   (extra arguments: the hooks run)
#   KEYLEDGER_BINARY    default: $KEYLEDGER_BIN, else target/release/keyledger (relative to the repo root)
# Environment:
#   SCHEMATHESIS_VENV          venv holding schemathesis (default target/schemathesis-venv); created if missing
#   SCHEMATHESIS_RUNS          which runs, comma-separated (default hooks,plain)
#   SCHEMATHESIS_MAX_EXAMPLES  test cases per operation and phase of the hooks run (default 100: about 2 minutes
#                              on 2 cores)
#   SCHEMATHESIS_SEED          seed of the hooks run (default 20251125)
#   SCHEMATHESIS_PLAIN_MAX_EXAMPLES, SCHEMATHESIS_PLAIN_SEED   the same for the plain run (defaults 30 and 7)
#   SCHEMATHESIS_WORKERS       concurrent workers (default 1: deterministic order for a given seed)
#   SCHEMATHESIS_TIMEOUT       hard wall-clock limit of each schemathesis run, seconds (default 480)
#   SCHEMATHESIS_REPORT_DIR    where junit/ndjson reports, the console output and the server log go
#                              (default target/schemathesis-report; the plain run's in its plain/ subdirectory)
#   SCHEMATHESIS_SCHEMA        a local OpenAPI file to test against instead of the document the binary serves
#                              (e.g. docs/openapi.json while editing it, without rebuilding); passed to
#                              `st run` with `--url` set to the server's base URL
# The admin key belongs to a throwaway ledger deleted at exit, so output is not sanitized: the
# reproducing curl lines keep every header and query value (key_id, secret...) as sent.
# Exit status: 0 when the document is valid and both runs pass; else non-zero (also when setup failed).
# Traffic goes to 127.0.0.1 only; the ledger is a fresh one in a temporary directory.
set -euo pipefail

ST_VERSION="4.32.5"
VALIDATOR_VERSION="0.9.0"

cd "$(dirname "$0")/.."
ROOT="$(pwd)"

BIN="${KEYLEDGER_BIN:-target/release/keyledger}"
if [[ $# -gt 0 && "$1" != "--" ]]; then
  BIN="$1"
  shift
fi
if [[ $# -gt 0 && "$1" == "--" ]]; then
  shift
fi
EXTRA_ARGS=("$@")

case "$BIN" in
  /*) ;;
  *) BIN="$ROOT/$BIN" ;;
esac
if [[ ! -x "$BIN" ]]; then
  echo "schemathesis.sh: keyledger binary not found or not executable: $BIN (build it: cargo build --release)" >&2
  exit 2
fi

VENV="${SCHEMATHESIS_VENV:-target/schemathesis-venv}"
case "$VENV" in
  /*) ;;
  *) VENV="$ROOT/$VENV" ;;
esac
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
SEED="${SCHEMATHESIS_SEED:-20251125}"
PLAIN_MAX_EXAMPLES="${SCHEMATHESIS_PLAIN_MAX_EXAMPLES:-30}"
PLAIN_SEED="${SCHEMATHESIS_PLAIN_SEED:-7}"
RUNS=",${SCHEMATHESIS_RUNS:-hooks,plain},"
WORKERS="${SCHEMATHESIS_WORKERS:-1}"
ST_TIMEOUT="${SCHEMATHESIS_TIMEOUT:-480}"
REPORT_DIR="${SCHEMATHESIS_REPORT_DIR:-target/schemathesis-report}"
case "$REPORT_DIR" in
  /*) ;;
  *) REPORT_DIR="$ROOT/$REPORT_DIR" ;;
esac
SCHEMA_FILE="${SCHEMATHESIS_SCHEMA:-}"
if [[ -n "$SCHEMA_FILE" ]]; then
  case "$SCHEMA_FILE" in
    /*) ;;
    *) SCHEMA_FILE="$ROOT/$SCHEMA_FILE" ;;
  esac
  if [[ ! -f "$SCHEMA_FILE" ]]; then
    echo "schemathesis.sh: SCHEMATHESIS_SCHEMA is not a file: $SCHEMA_FILE" >&2
    exit 2
  fi
fi

# --- schemathesis and openapi-spec-validator, pinned, in their own venv --------------------------
if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "version $ST_VERSION\$" ||
  ! "$VENV/bin/openapi-spec-validator" --version 2>/dev/null | grep -q " $VALIDATOR_VERSION\$"; then
  echo "== installing schemathesis $ST_VERSION and openapi-spec-validator $VALIDATOR_VERSION into $VENV"
  command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3; }
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv
  fi
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "schemathesis==$ST_VERSION" \
    "openapi-spec-validator==$VALIDATOR_VERSION"
fi
"$VENV/bin/st" --version
"$VENV/bin/openapi-spec-validator" --version

# --- fresh ledgers, each served on a free loopback port --------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/keyledger-st.XXXXXX")"
SERVER_PID=""
stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() {
  local rc=$?
  stop_server
  if compgen -G "$WORK/server-*.log" >/dev/null; then
    mkdir -p "$REPORT_DIR" && cp "$WORK"/server-*.log "$REPORT_DIR/" || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_server NAME: a new ledger in $WORK/NAME, served; sets BASE, SERVER_PID, ADMIN_KEY and ADMIN_ID.
start_server() {
  local name="$1" data="$WORK/$1" log="$WORK/server-$1.log"
  "$BIN" --data "$data" init >"$WORK/init-$name.out"
  ADMIN_KEY="$(awk '/^  kl_keyledger_/ {print $1}' "$WORK/init-$name.out")"
  if [[ -z "$ADMIN_KEY" ]]; then
    echo "schemathesis.sh: could not read the bootstrap admin key from 'keyledger init'" >&2
    exit 2
  fi
  BASE=""
  for attempt in 1 2 3 4 5; do
    PORT="$(free_port)"
    "$BIN" --data "$data" serve --addr "127.0.0.1:$PORT" >>"$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
      if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/healthz" 2>/dev/null; then
        BASE="http://127.0.0.1:$PORT"
        break
      fi
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    [[ -n "$BASE" ]] && break
    # Lost the port race or did not start: stop it if still there and try another port.
    stop_server
    echo "schemathesis.sh: server did not come up on port $PORT (attempt $attempt)" >&2
  done
  if [[ -z "$BASE" ]]; then
    echo "schemathesis.sh: keyledger serve never answered /healthz; its log:" >&2
    cat "$log" >&2 || true
    exit 2
  fi
  ADMIN_ID="$(curl -fsS -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
    -d "{\"secret\": \"$ADMIN_KEY\"}" "$BASE/v1/keys/find" |
    "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["key"]["key_id"])')"
  echo "== keyledger serving a fresh ledger at $BASE (pid $SERVER_PID)"
}

rm -rf "$REPORT_DIR"
mkdir -p "$REPORT_DIR"
start_server hooks

# --- the served document is valid OpenAPI 3.0 ------------------------------------------------------
curl -fsS -o "$REPORT_DIR/openapi.json" "$BASE/v1/openapi.json"
echo "== openapi-spec-validator: the served /v1/openapi.json"
VALID_RC=0
"$VENV/bin/openapi-spec-validator" --schema 3.0 "$REPORT_DIR/openapi.json" || VALID_RC=$?
if [[ -n "$SCHEMA_FILE" ]]; then
  "$VENV/bin/openapi-spec-validator" --schema 3.0 "$SCHEMA_FILE" || VALID_RC=$?
fi

# location BASE: the schema to test and, for a local file, the server to send to.
location() {
  if [[ -n "$SCHEMA_FILE" ]]; then
    printf '%s\n' "$SCHEMA_FILE" --url "$1"
  else
    printf '%s\n' "$1/v1/openapi.json"
  fi
}

# run_st NAME TIMEOUT ARGS...: one schemathesis run (key masked in the printed command), its exit status in ST_RC.
run_st() {
  local name="$1" limit="$2"
  shift 2
  printf '== %s run: %s\n' "$name" "$(printf '%q ' "$@" | sed "s/$ADMIN_KEY/kl_keyledger_<admin>/g")"
  local start end
  start=$(date +%s)
  set +e
  timeout --signal=TERM --kill-after=20 "$limit" "$@" 2>&1 | tee "$REPORT_DIR/console-$name.txt"
  ST_RC=${PIPESTATUS[0]}
  set -e
  end=$(date +%s)
  echo "== schemathesis ($name) exited $ST_RC after $((end - start))s"
  if [[ $ST_RC -eq 124 ]]; then
    echo "schemathesis.sh: the $name run exceeded ${limit}s" >&2
  fi
}

COMMON=(
  --checks all
  --mode all
  --workers "$WORKERS"
  --request-timeout 10
  --generation-database none
  --suppress-health-check all
  --continue-on-failure
  --output-sanitize false
  --no-color
)

# --- run 1: with hooks ------------------------------------------------------------------------------
# Hooks for what a real client does and JSON Schema cannot say (fresh Idempotency-Keys, future times...).
HOOKS_RC=0
if [[ "$RUNS" == *,hooks,* ]]; then
  cp "$ROOT/.ci/schemathesis_hooks.py" "$WORK/keyledger_st_hooks.py"
  mapfile -t WHERE < <(location "$BASE")
  KEYLEDGER_ST_ADMIN="$ADMIN_KEY" KEYLEDGER_ST_ADMIN_ID="$ADMIN_ID" SCHEMATHESIS_HOOKS=keyledger_st_hooks \
    PYTHONPATH="$WORK${PYTHONPATH:+:$PYTHONPATH}" \
    run_st hooks "$ST_TIMEOUT" "$VENV/bin/st" run "${WHERE[@]}" "${COMMON[@]}" \
    --phases examples,coverage,fuzzing,stateful \
    --header "Authorization: Bearer $ADMIN_KEY" \
    --seed "$SEED" --max-examples "$MAX_EXAMPLES" \
    --report junit,ndjson --report-dir "$REPORT_DIR" \
    "${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"}"
  HOOKS_RC=$ST_RC
fi
stop_server

# --- run 2: as a tool user runs it, no hooks --------------------------------------------------------
PLAIN_RC=0
if [[ "$RUNS" == *,plain,* ]]; then
  start_server plain
  # The event stream's bounded form (docs/openapi.json): without it, a stream never ends and every read of it
  # would time out. Nothing else is configured.
  cat >"$WORK/plain.toml" <<'TOML'
[[operations]]
include-path = "/v1/events/stream"
parameters = { "query.idle_timeout" = 0 }
TOML
  mapfile -t WHERE < <(location "$BASE")
  mkdir -p "$REPORT_DIR/plain"
  unset SCHEMATHESIS_HOOKS
  run_st plain "$ST_TIMEOUT" \
    "$VENV/bin/st" --config-file "$WORK/plain.toml" run "${WHERE[@]}" "${COMMON[@]}" \
    --phases examples,coverage,fuzzing,stateful \
    --header "Authorization: Bearer $ADMIN_KEY" \
    --seed "$PLAIN_SEED" --max-examples "$PLAIN_MAX_EXAMPLES" \
    --report junit,json --report-dir "$REPORT_DIR/plain"
  if [[ $ST_RC -ne 0 && $ST_RC -ne 1 ]]; then
    PLAIN_RC=$ST_RC # not a finished run with failures (1): an error of schemathesis itself, or the time limit
  else
    "$VENV/bin/python" "$ROOT/.ci/schemathesis_triage.py" "$REPORT_DIR/plain" || PLAIN_RC=$?
  fi
  stop_server
fi

echo "== reports in $REPORT_DIR: document valid: $([[ $VALID_RC -eq 0 ]] && echo yes || echo NO)," \
  "hooks run: exit $HOOKS_RC, plain run (triaged): exit $PLAIN_RC"
if [[ $VALID_RC -ne 0 || $HOOKS_RC -ne 0 || $PLAIN_RC -ne 0 ]]; then
  exit 1
fi
