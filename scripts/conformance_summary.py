"""Reads a Tempest run's subunit stream and prints, per service, how many
tests passed, failed and were skipped; with --list, every test that failed
or was skipped as well (with the skip's reason, or the failure's last
traceback line: the exception and, for an HTTP error, its status and body).

    conformance_summary.py RESULTS.subunit [--list]

Run with the Tempest virtualenv's python (python-subunit comes with
Tempest). A class-level setup failure counts as a failure of its class."""
import argparse
import collections
import re
import sys

import subunit
import testtools

# tempest.api.<service>.<...>.<Class>.<test>[attrs]
SERVICE = re.compile(r"^(?:setUpClass \()?tempest\.api\.(\w+)\.")


def last_line(traceback, width=240):
    """The line of a traceback that says what went wrong, shortened."""
    lines = [line.strip() for line in traceback.splitlines() if line.strip()]
    # An HTTP error's body is on the "Details:" line after the exception's.
    for index, line in enumerate(lines):
        if line.startswith("Details:") and index:
            return f"{lines[index - 1]} {line}"[:width]
    return lines[-1][:width] if lines else ""


def read(path):
    """test id -> (status, skip reason)."""
    results = {}

    def on_test(test):
        if test["status"] in ("exists", None):
            return
        details = test.get("details") or {}
        reason = ""
        if "reason" in details:
            reason = details["reason"].as_text().strip()
        elif "traceback" in details:
            reason = last_line(details["traceback"].as_text())
        results[test["id"]] = (test["status"], reason)

    with open(path, "rb") as stream:
        case = subunit.ByteStreamToStreamResult(stream, non_subunit_name="stdout")
        result = testtools.StreamToDict(on_test)
        result.startTestRun()
        try:
            case.run(result)
        finally:
            result.stopTestRun()
    return results


def summarize(results):
    counts = collections.defaultdict(collections.Counter)
    for test_id, (status, _) in results.items():
        match = SERVICE.match(test_id)
        service = match.group(1) if match else "other"
        if status == "success":
            counts[service]["passed"] += 1
        elif status == "skip":
            counts[service]["skipped"] += 1
        else:  # fail, uxsuccess
            counts[service]["failed"] += 1
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--list", action="store_true", help="also list every failed and skipped test")
    args = parser.parse_args()
    results = read(args.results)
    counts = summarize(results)
    print(f"{'service':10} {'passed':>7} {'failed':>7} {'skipped':>8}")
    for service in sorted(counts):
        c = counts[service]
        print(f"{service:10} {c['passed']:7} {c['failed']:7} {c['skipped']:8}")
    total = sum(counts.values(), collections.Counter())
    print(f"{'total':10} {total['passed']:7} {total['failed']:7} {total['skipped']:8}")
    if args.list:
        for test_id, (status, reason) in sorted(results.items()):
            if status == "success":
                continue
            print(f"{status:8} {test_id}" + (f"  -- {reason}" if reason else ""))
    # The plain closing line, for whoever reads the log's tail.
    print(f"conformance: {total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
