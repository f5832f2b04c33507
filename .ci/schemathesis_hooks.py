"""Schemathesis hooks for keyledger's CI run: what a real client does and JSON Schema cannot say.

- Idempotency-Key: a client sends a new key for every distinct request. Generated values repeat ("0", "a"...)
  across operations and bodies, and a reused key is rightly a 422 idempotency_key_reused, so every request
  carrying a well-formed key gets a fresh UUID; malformed keys (negative cases) are sent as generated.
- The run's own admin key is never changed (requests naming it go to an unknown id instead).
- The event stream is asked for its bounded form (`idle_timeout=0` unless a negative case set one), so that
  every read of it ends.
- Positive cases only (negative cases are sent as generated), cross-field and time rules that docs/openapi.json
  states in words: `expires_at` and a suspension's `until` lie in the future; `cursor` is a value a previous
  page returned, so an invented one is dropped; the `owner` report needs `?owner=`; a rotation notice comes
  before the period ends; `consistency_from` is a size the log had; `/v1/keys/find` looks up a real secret; the
  event stream gets `after` or `from`, not both; an `X-Reason` that would be the reason used is a valid one.
"""
import datetime
import hashlib
import os
import re
import uuid

import schemathesis

_WELL_FORMED = re.compile(r"^[!-~]{1,255}$")
_FUTURE_FIELDS = ("expires_at", "until")
_META_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The bootstrap admin key of the throwaway ledger under test, from .ci/schemathesis.sh.
ADMIN = os.environ.get("KEYLEDGER_ST_ADMIN", "")
ADMIN_ID = os.environ.get("KEYLEDGER_ST_ADMIN_ID", "")


def _is_positive(case):
    generation = getattr(getattr(case, "meta", None), "generation", None)
    mode = getattr(generation, "mode", None)
    return mode is not None and mode.is_positive


def _future():
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
    return later.strftime("%Y-%m-%dT%H:%M:%SZ")


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key":
            value = headers[name]
            if isinstance(value, str) and _WELL_FORMED.match(value):
                headers[name] = str(uuid.uuid4())
    params = case.path_parameters or {}
    if ADMIN_ID and params.get("id") == ADMIN_ID and case.method.upper() != "GET":
        # The run's own credential is not a subject: a PATCH narrowing its IP allowlist or a rotation would lock
        # every later request out (tests/http_keys.rs covers what the server refuses about a caller's own key).
        params["id"] = str(uuid.uuid4())
    positive = _is_positive(case)
    if case.path == "/v1/events/stream":
        case.query = case.query or {}
        if positive or "idle_timeout" not in case.query:
            case.query["idle_timeout"] = 0
        if positive and "after" in case.query:
            case.query.pop("from", None)
    if not positive:
        return
    for name in [n for n in headers if n.lower() == "x-reason"]:
        value = headers[name]
        if isinstance(value, str) and (len(value.strip()) > 512 or _CONTROL.search(value)):
            del headers[name]
    if isinstance(case.body, dict):
        _shape_body(case.body)
        if case.path == "/v1/keys/find" and ADMIN:
            # A secret with the right shape but a wrong checksum is rightly a 400; look up a real one.
            if case.body.get("secret") is not None:
                case.body["secret"] = ADMIN
            elif case.body.get("sha256") is not None:
                case.body["sha256"] = hashlib.sha256(ADMIN.encode()).hexdigest()
    if isinstance(case.query, dict):
        case.query.pop("cursor", None)
        # The tree's size grows as the run goes; 1 is always a size the log had.
        if "consistency_from" in case.query:
            case.query["consistency_from"] = 1
        if case.path_parameters and case.path_parameters.get("name") == "owner":
            case.query.setdefault("owner", "team-fuzz")


def _shape_body(body):
    for field in _FUTURE_FIELDS:
        if isinstance(body.get(field), str):
            body[field] = _future()
    policy = body.get("rotation_policy")
    if isinstance(policy, dict) and isinstance(policy.get("every_days"), int):
        notify = policy.get("notify_days_before")
        if isinstance(notify, int) and notify >= policy["every_days"]:
            policy["notify_days_before"] = policy["every_days"] - 1
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        # The document's propertyNames pattern, which some generation phases do not apply.
        for name in [n for n in metadata if not _META_NAME.match(n)]:
            del metadata[name]
