#!/usr/bin/env bash
# Fuzz the served HTTP API against docs/openapi.json (as served at /v1/openapi.json) with schemathesis:
# every check, every phase (examples, coverage, fuzzing, stateful), admin key as bearer, fixed seed.
#
# Usage: .ci/schemathesis.sh [KEYLEDGER_BINARY] [-- EXTRA_SCHEMATHESIS_ARGS...]
#   KEYLEDGER_BINARY    default: $KEYLEDGER_BIN, else target/release/keyledger (relative to the repo root)
# Environment:
#   SCHEMATHESIS_VENV          venv holding schemathesis (default target/schemathesis-venv); created if missing
#   SCHEMATHESIS_MAX_EXAMPLES  test cases per operation and phase (default 100: about 2 minutes on 2 cores)
#   SCHEMATHESIS_SEED          seed (default 20251125)
#   SCHEMATHESIS_WORKERS       concurrent workers (default 1: deterministic order for a given seed)
#   SCHEMATHESIS_TIMEOUT       hard wall-clock limit of the schemathesis run, seconds (default 480)
#   SCHEMATHESIS_REPORT_DIR    where junit/ndjson reports, the console output and the server log go
#                              (default target/schemathesis-report)
#   SCHEMATHESIS_SCHEMA        a local OpenAPI file to test against instead of the document the binary serves
#                              (e.g. docs/openapi.json while editing it, without rebuilding); passed to
#                              `st run` with `--url` set to the server's base URL
# The admin key belongs to a throwaway ledger deleted at exit, so output is not sanitized: the
# reproducing curl lines keep every header and query value (key_id, secret...) as sent.
# Exit status: schemathesis's own (non-zero on any failure or error), or non-zero if setup failed.
# Traffic goes to 127.0.0.1 only; the ledger is a fresh one in a temporary directory.
set -euo pipefail

ST_VERSION="4.32.5"

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

# --- schemathesis, pinned, in its own venv --------------------------------------------------------
if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "version $ST_VERSION\$"; then
  echo "== installing schemathesis $ST_VERSION into $VENV"
  command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3; }
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv
  fi
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "schemathesis==$ST_VERSION"
fi
"$VENV/bin/st" --version

# --- a fresh ledger, served on a free loopback port -----------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/keyledger-st.XXXXXX")"
SERVER_PID=""
cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ -f "$WORK/server.log" ]]; then
    mkdir -p "$REPORT_DIR" && cp "$WORK/server.log" "$REPORT_DIR/server.log" || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

DATA="$WORK/data"
"$BIN" --data "$DATA" init >"$WORK/init.out"
ADMIN_KEY="$(awk '/^  kl_keyledger_/ {print $1}' "$WORK/init.out")"
if [[ -z "$ADMIN_KEY" ]]; then
  echo "schemathesis.sh: could not read the bootstrap admin key from 'keyledger init'" >&2
  exit 2
fi

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

BASE=""
for attempt in 1 2 3 4 5; do
  PORT="$(free_port)"
  "$BIN" --data "$DATA" serve --addr "127.0.0.1:$PORT" >>"$WORK/server.log" 2>&1 &
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
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  echo "schemathesis.sh: server did not come up on port $PORT (attempt $attempt)" >&2
done
if [[ -z "$BASE" ]]; then
  echo "schemathesis.sh: keyledger serve never answered /healthz; its log:" >&2
  cat "$WORK/server.log" >&2 || true
  exit 2
fi
echo "== keyledger serving a fresh ledger at $BASE (pid $SERVER_PID)"

# --- schemathesis ---------------------------------------------------------------------------------
# Hooks for what a real client does and JSON Schema cannot say (fresh Idempotency-Keys, future times...).
cp "$ROOT/.ci/schemathesis_hooks.py" "$WORK/keyledger_st_hooks.py"
export KEYLEDGER_ST_ADMIN="$ADMIN_KEY"
KEYLEDGER_ST_ADMIN_ID="$(curl -fsS -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
  -d "{\"secret\": \"$ADMIN_KEY\"}" "$BASE/v1/keys/find" | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["key"]["key_id"])')"
export KEYLEDGER_ST_ADMIN_ID
export PYTHONPATH="$WORK${PYTHONPATH:+:$PYTHONPATH}"
export SCHEMATHESIS_HOOKS=keyledger_st_hooks

rm -rf "$REPORT_DIR"
mkdir -p "$REPORT_DIR"
if [[ -n "$SCHEMA_FILE" ]]; then
  LOCATION=("$SCHEMA_FILE" --url "$BASE")
else
  LOCATION=("$BASE/v1/openapi.json")
fi
CMD=(
  "$VENV/bin/st" run "${LOCATION[@]}"
  --checks all
  --phases examples,coverage,fuzzing,stateful
  --mode all
  --header "Authorization: Bearer $ADMIN_KEY"
  --seed "$SEED"
  --max-examples "$MAX_EXAMPLES"
  --workers "$WORKERS"
  --request-timeout 10
  --generation-database none
  --suppress-health-check all
  --continue-on-failure
  --output-sanitize false
  --no-color
  --report junit,ndjson
  --report-dir "$REPORT_DIR"
  # The follow stream never ends by design (every request would hit the read timeout); tests/event_stream.rs
  # covers it, including its 400s and 401.
  --exclude-path /v1/events/stream
)
CMD+=("${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"}")

# Print the command with the key masked.
printf '== %s\n' "$(printf '%q ' "${CMD[@]}" | sed "s/$ADMIN_KEY/kl_keyledger_<admin>/g")"
START=$(date +%s)
set +e
timeout --signal=TERM --kill-after=20 "$ST_TIMEOUT" "${CMD[@]}" 2>&1 | tee "$REPORT_DIR/console.txt"
ST_RC=${PIPESTATUS[0]}
set -e
END=$(date +%s)
echo "== schemathesis exited $ST_RC after $((END - START))s; reports in $REPORT_DIR"
if [[ $ST_RC -eq 124 ]]; then
  echo "schemathesis.sh: schemathesis exceeded ${ST_TIMEOUT}s" >&2
fi
exit "$ST_RC"
