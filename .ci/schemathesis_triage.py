"""Triage of the hook-free schemathesis run (.ci/schemathesis.sh): fails on any failure or error outside the
by-design classes that docs/API.md lists ("What a fuzzer reports").

Those are rejections of requests the schema calls valid, for rules OpenAPI 3.0 cannot state and each operation's
description states in words; every other failure (a 5xx, a response that contradicts the schema, a rule the
schema could carry but does not...) and every error (a timeout, a dropped connection) fails the run.

Usage: schemathesis_triage.py REPORT_DIR   (the run's --report junit,json output)
Exit status: 0 when every failure is by design, 1 otherwise, 2 when the reports cannot be read.
"""
import glob
import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass

# The check that reports a schema-valid request answered with 4xx ("Schema-valid request rejected").
REJECTED_POSITIVE = "ST202"


@dataclass
class Finding:
    operation: str
    check: str
    status: int | None
    code: str
    message: str
    request: str



# (class, what it is, does a finding belong to it). Keep in step with docs/API.md.
BY_DESIGN = [
    ("idempotency_key_reused", "a generated Idempotency-Key sent again with another request (422, by design)",
     lambda f: f.status == 422 and f.code == "idempotency_key_reused"),
    ("cursor", "a cursor must be one this endpoint returned",
     lambda f: f.status == 400 and f.message.startswith("cursor:")),
    ("future_time", "until / expires_at must lie in the future",
     lambda f: f.status == 400 and re.match(r"(until|expires_at): must be in the future", f.message)),
    ("consistency_from", "consistency_from must be a size the log has had",
     lambda f: f.status == 400 and f.message.startswith("consistency_from:")),
    ("secret_checksum", "a secret's checksum must match",
     lambda f: f.status == 400 and f.message.startswith("secret:") and "checksum" in f.message),
    ("stream_after_with_from", "the event stream takes after or from, not both",
     lambda f: f.status == 400 and f.operation == "GET /v1/events/stream" and f.message.startswith("from: give either")),
    ("owner_report_without_owner", "the owner report needs ?owner=",
     lambda f: f.status == 400 and f.operation == "GET /v1/reports/{name}" and "/v1/reports/owner" in f.request
     and not re.search(r"[?&]owner=", f.request)),
    ("metadata_name", "metadata names are 1-64 of letters, digits and _.:- (no OpenAPI 3.0 keyword for names)",
     # The field `metadata` itself names a refused name; a refused value names `metadata.<name>`.
     lambda f: f.status == 400 and f.message.startswith("metadata:")),
    ("x_reason", "X-Reason is checked only when it is the reason used (no ?reason=, no body reason)",
     lambda f: f.status == 400 and f.message.startswith("reason:") and "X-Reason:" in f.request),
    ("rotation_notice", "a rotation policy's notice comes before its period ends",
     lambda f: f.status == 400 and f.message.startswith("rotation_policy") and "notify_days_before" in f.message),
]

_CASE = re.compile(r"^\d+\. Test Case ID: ", re.M)
_CHECK = re.compile(r"^- (ST\d+) (.+)$", re.M)
_STATUS = re.compile(r"^\[(\d{3})\] ", re.M)
_BODY = re.compile(r"^ {4}`(.*)`$", re.M)
_CURL = re.compile(r"^ {4}(curl .*)$", re.M)


def findings(junit_path):
    """Every (test case, failed check) of a JUnit report, and the number of <error> entries."""
    out, errors = [], []
    for testcase in ET.parse(junit_path).getroot().iter("testcase"):
        operation = testcase.get("name", "?")
        for error in testcase.findall("error"):
            errors.append(f"{operation}: {(error.text or error.get('message') or '').strip()[:2000]}")
        for failure in testcase.findall("failure"):
            for block in _CASE.split(failure.text or "")[1:]:
                status = _STATUS.search(block)
                body = _BODY.search(block)
                curl = _CURL.search(block)
                code = message = ""
                if body:
                    try:
                        error = json.loads(body.group(1)).get("error", {})
                        code, message = error.get("code", ""), error.get("message", "")
                    except (ValueError, AttributeError):
                        pass
                for check in _CHECK.finditer(block):
                    out.append(Finding(operation, check.group(1), int(status.group(1)) if status else None, code,
                                       message, curl.group(1) if curl else ""))
    return out, errors


def classify(finding):
    if finding.check != REJECTED_POSITIVE:
        return None
    for name, _, belongs in BY_DESIGN:
        if belongs(finding):
            return name
    return None


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    report_dir = argv[1]
    junits = sorted(glob.glob(os.path.join(report_dir, "junit*.xml")))
    summaries = sorted(glob.glob(os.path.join(report_dir, "json*.json")))
    if len(junits) != 1 or len(summaries) != 1:
        print(f"triage: expected one junit*.xml and one json*.json in {report_dir}", file=sys.stderr)
        return 2
    found, errors = findings(junits[0])
    with open(summaries[0], encoding="utf-8") as handle:
        summary = json.load(handle)
    counted = sum(f.get("count", 0) for f in summary.get("failures", []))
    by_class, unexpected = Counter(), []
    for finding in found:
        name = classify(finding)
        if name:
            by_class[name] += 1
        else:
            unexpected.append(finding)
    cases = summary.get("test_cases", {}).get("generated", "?")
    print(f"== hook-free run: {cases} test cases, {len(found)} failures, {len(errors)} errors")
    for name, what, _ in BY_DESIGN:
        if by_class[name]:
            print(f"   by design  {by_class[name]:3}  {name}: {what}")
    ok = True
    if counted != len(found):
        # The JUnit text could not be read as expected: do not pass what was not looked at.
        print(f"triage: the summary counts {counted} failures, the JUnit report yielded {len(found)}", file=sys.stderr)
        ok = False
    for finding in unexpected:
        print(f"UNEXPECTED {finding.check} {finding.operation}: [{finding.status}] {finding.code} {finding.message}\n"
              f"    {finding.request}", file=sys.stderr)
        ok = False
    for error in errors + [json.dumps(e)[:2000] for e in summary.get("errors", [])]:
        print(f"ERROR {error}", file=sys.stderr)
        ok = False
    if ok:
        print("== every failure of the hook-free run is in a by-design class (docs/API.md)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
