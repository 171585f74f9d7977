#!/usr/bin/env python3
"""Results of pyopencl's test suite, for scripts/opencl-suite.sh.

  opencl-suite-results.py results JUNIT.xml OUT.json
      One JSON object: {"tests": {test id: outcome}, "counts": {outcome: n}, "seconds": total}.
      Outcomes: passed, failed, error, skipped. A test id is the file and the test's name with its
      parameters, the OpenCL device's parameter written as `ctx` (pyopencl names it after the device
      and platform, which differ between PoCL and the remote platform).

  opencl-suite-results.py compare DIRECT.json REMOTE.json EXPECTED.txt [--ran-only]
      Every test that passed directly must pass remotely, except the ones EXPECTED.txt lists (one
      test id a line, then `#` and the reason; blank lines and lines starting with `#` are ignored).
      Also fails on a listed test that passed remotely (the list must say what is true) and on a
      listed line without a reason. Prints the comparison; exit status 1 when it fails.
      With --ran-only after EXPECTED.txt, only the tests REMOTE.json has are compared (a part of
      the suite run remotely against a whole direct run).
"""

import json
import re
import sys
import xml.etree.ElementTree as ElementTree

# pyopencl's id for its context-factory parameter:
# <context factory for <pyopencl.Device 'NAME' on 'PLATFORM'>>
DEVICE_PARAMETER = re.compile(r"<context factory for <pyopencl\.Device '.*?' on '.*?'>>")


def test_id(case):
    module = case.get("classname", "")
    name = DEVICE_PARAMETER.sub("ctx", case.get("name", ""))
    return f"{module.replace('.', '/')}.py::{name}" if module else name


def outcome(case):
    for child in case:
        if child.tag in ("failure", "error", "skipped"):
            return {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
    return "passed"


def results(junit_path, out_path):
    root = ElementTree.parse(junit_path).getroot()
    tests = {}
    seconds = 0.0
    for case in root.iter("testcase"):
        key = test_id(case)
        result = outcome(case)
        # A test that errors in teardown after passing appears twice; the worse outcome counts.
        if tests.get(key) in ("failed", "error") and result in ("passed", "skipped"):
            continue
        tests[key] = result
        seconds += float(case.get("time", "0") or 0)
    counts = {}
    for result in tests.values():
        counts[result] = counts.get(result, 0) + 1
    with open(out_path, "w") as out:
        json.dump({"tests": dict(sorted(tests.items())), "counts": counts, "seconds": round(seconds, 1)}, out, indent=1)
        out.write("\n")
    print(f"{out_path}: " + ", ".join(f"{counts[k]} {k}" for k in sorted(counts)))


def read_expected(path):
    expected = {}
    problems = []
    with open(path) as listing:
        for number, line in enumerate(listing, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            test, _, reason = text.partition("#")
            if not reason.strip():
                problems.append(f"{path}:{number}: no reason given for {test.strip()}")
            expected[test.strip()] = reason.strip()
    return expected, problems


def compare(direct_path, remote_path, expected_path, ran_only=False):
    with open(direct_path) as f:
        direct = json.load(f)["tests"]
    with open(remote_path) as f:
        remote = json.load(f)["tests"]
    if ran_only:
        # A part of the suite run remotely against a whole direct run: the tests both have.
        direct = {t: r for t, r in direct.items() if t in remote}
    expected, problems = read_expected(expected_path)
    passed_direct = [t for t, r in direct.items() if r == "passed"]
    passed_remote = [t for t in passed_direct if remote.get(t) == "passed"]
    regressions = [t for t in passed_direct if remote.get(t) != "passed" and t not in expected]
    excused = [t for t in passed_direct if remote.get(t) != "passed" and t in expected]
    stale = [t for t in expected if remote.get(t) == "passed"]
    only_remote = [t for t, r in remote.items() if r == "passed" and direct.get(t) != "passed"]
    print(f"passed directly: {len(passed_direct)}; of those passed remotely: {len(passed_remote)}; "
          f"listed in {expected_path}: {len(excused)}")
    for t in excused:
        print(f"  expected: {t} ({remote.get(t, 'not run')}): {expected[t]}")
    for t in only_remote:
        print(f"  passed remotely only: {t} (direct: {direct.get(t, 'not run')})")
    for t in regressions:
        print(f"FAIL: passed directly, {remote.get(t, 'not run')} remotely: {t}")
    for t in stale:
        print(f"FAIL: listed as failing remotely but passed: {t} (remove it from {expected_path})")
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if regressions or stale or problems else 0


def main(argv):
    if len(argv) == 4 and argv[1] == "results":
        results(argv[2], argv[3])
        return 0
    if len(argv) in (5, 6) and argv[1] == "compare" and argv[5:] in ([], ["--ran-only"]):
        return compare(argv[2], argv[3], argv[4], ran_only=argv[5:] == ["--ran-only"])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
