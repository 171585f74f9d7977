"""Counts numba-cuda suite results and compares them with the expected failures.

    python compare.py RESULTS.tsv EXPECTED.txt [--counts FILE] [--seconds S] [--jobs N]

RESULTS.tsv: Tests/numba/run_suite.py's output (id, outcome, reason). EXPECTED.txt: one test id
or fnmatch pattern per line, then `#` and the reason it fails through the shim. A test that does
not pass (fail, error, timeout, crash, xpass) and matches no line is a new failure: each is named
and the exit status is 1. Listed tests that pass are reported as fixed (remove their line).
Per suite, "ran" is every test not skipped and not pending (a run stopped before it reached the
test), and the pass rate is (pass + xfail) / ran.
"""

import argparse
import fnmatch
import sys

BAD = {"fail", "error", "timeout", "crash", "xpass"}
SUITES = ("numba.cuda.tests.cudadrv", "numba.cuda.tests.cudapy")


def read_expected(path):
    patterns = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            text, _, reason = line.partition("#")
            text = text.strip()
            if not text:
                continue
            if not reason.strip():
                sys.exit(f"compare: {path}:{number}: '{text}' has no reason (write it after #)")
            patterns.append(text)
    return patterns


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("expected")
    parser.add_argument("--counts")
    parser.add_argument("--seconds", type=int)
    parser.add_argument("--jobs", type=int)
    args = parser.parse_args()
    patterns = read_expected(args.expected)
    rows = []
    with open(args.results) as f:
        for line in f:
            test_id, outcome, reason = (line.rstrip("\n").split("\t") + ["", ""])[:3]
            rows.append((test_id, outcome, reason))

    def expected(test_id):
        return any(fnmatch.fnmatchcase(test_id, p) for p in patterns)

    lines = []
    for suite in SUITES:
        mine = [r for r in rows if r[0].startswith(suite + ".")]
        counts = {}
        for _, outcome, _ in mine:
            counts[outcome] = counts.get(outcome, 0) + 1
        ran = len(mine) - counts.get("skip", 0) - counts.get("pending", 0)
        passed = counts.get("pass", 0) + counts.get("xfail", 0)
        failed = ran - passed
        rate = 100.0 * passed / ran if ran else 0.0
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        lines.append(f"{suite}: {len(mine)} tests, {ran} ran, {passed} passed, {failed} did not ({rate:.1f}%); {detail}")
    if args.seconds is not None:
        lines.append(f"wall time {args.seconds} s with {args.jobs} worker(s)")
    new = [r for r in rows if r[1] in BAD and not expected(r[0])]
    fixed = [r for r in rows if r[1] in ("pass", "xfail") and expected(r[0])]
    for line in lines:
        print(f"numba-suite: {line}")
    if args.counts:
        with open(args.counts, "w") as f:
            f.write("\n".join(lines) + "\n")
    for test_id, _, _ in fixed:
        print(f"numba-suite: passes now, listed as expected to fail: {test_id}")
    for test_id, outcome, reason in new:
        print(f"numba-suite: NEW {outcome}: {test_id}: {reason}")
    if new:
        print(f"numba-suite: {len(new)} test(s) failed that Tests/numba/expected-failures.txt does not list")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
