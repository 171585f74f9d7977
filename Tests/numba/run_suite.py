"""Runs numba-cuda's own unittest suites and records one outcome per test.

    python run_suite.py --results OUT.tsv [--jobs N] [--test-timeout S] [--only IDS.txt] MODULE...

MODULE is a test package such as numba.cuda.tests.cudadrv. The tests are split into N shards
(by a hash of their id), each run by a worker process of its own: each worker is one client of
the CUDA driver (through the shim, one session). A worker reports each test as it starts and ends;
a test that makes no progress for S seconds is recorded as `timeout`, its worker is killed and a
new one goes on with the tests after it. A worker that dies records the test it was running as
`crash`. OUT.tsv gets one line per test: id, outcome (pass, fail, error, skip, xfail, xpass,
timeout, crash) and the first line of the reason. A kernel fault leaves a CUDA context failing
every later call: after a test that fails or errors, the worker checks its context and, if it
no longer works, stops, and a new worker goes on with the tests after it.

--only limits the run to the test ids listed in a file (one per line, # comments).
"""

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
import traceback
import unittest
import zlib


def iterate(suite):
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            yield from iterate(test)
        else:
            yield test


class ModuleSkipped(unittest.TestCase):
    """Stands for a test module that skips itself while it is imported (pytest.importorskip)."""

    def __init__(self, module, reason):
        super().__init__("runTest")
        self.module, self.reason = module, reason

    def runTest(self):
        raise unittest.SkipTest(self.reason)

    def id(self):
        return f"{self.module}.(module)"


def load(packages):
    """The tests of each package's test_*.py modules, in name order, as numba-cuda's load_tests
    finds them; a module that skips itself at import stands as one skipped test."""
    loader = unittest.TestLoader()
    tests = []
    for package in packages:
        directory = os.path.dirname(importlib.import_module(package).__file__)
        for name in sorted(os.listdir(directory)):
            if not (name.startswith("test_") and name.endswith(".py")):
                continue
            module = f"{package}.{name[:-3]}"
            try:
                tests.extend(iterate(loader.loadTestsFromName(module)))
            except BaseException as skipped:  # pytest's Skipped derives from BaseException
                if type(skipped).__name__ != "Skipped":
                    raise
                tests.append(ModuleSkipped(module, first_line(str(skipped))))
    return tests


def first_line(text):
    """The line of an exception's text that says what failed: its first line, unless that only
    introduces the rest (ends with ':'), then the last line. No tabs or NULs (they would break
    the results file)."""
    lines = [line.strip() for line in text.replace("\x00", "").replace("\t", " ").splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[0] if not lines[0].endswith(":") or len(lines) == 1 else lines[0] + " " + lines[-1]
    return line[:300]


def context_usable():
    """Whether the current CUDA context still works (a kernel fault leaves it failing every call)."""
    try:
        from numba import cuda

        cuda.synchronize()
        return True
    except Exception:
        return False


RESTART = 3  # a worker's exit status when it stopped early for a new process to go on


class Recorder(unittest.TestResult):
    """Writes one JSON line per finished test to `out` (the worker's standard output)."""

    def __init__(self, out):
        super().__init__()
        self.out = out
        self.outcome = None
        self.sticky = False

    def emit(self, test, outcome, reason=""):
        if self.outcome is None or outcome not in ("pass",):
            self.outcome = (outcome, reason)

    def startTest(self, test):
        super().startTest(test)
        self.outcome = None
        self.out.write(json.dumps({"start": test.id()}) + "\n")
        self.out.flush()

    def stopTest(self, test):
        super().stopTest(test)
        outcome, reason = self.outcome or ("pass", "")
        self.out.write(json.dumps({"end": test.id(), "outcome": outcome, "reason": reason}) + "\n")
        self.out.flush()
        if outcome in ("fail", "error") and not context_usable():
            # A kernel fault is sticky: every later call of this process would fail with it.
            # The worker stops; the supervisor starts a new one for the tests left.
            self.shouldStop = True
            self.sticky = True

    def addSuccess(self, test):
        self.emit(test, "pass")

    def addError(self, test, err):
        if type(err[1]).__name__ == "Skipped":  # pytest.skip or importorskip inside a test
            self.emit(test, "skip", first_line(str(err[1])))
            return
        self.emit(test, "error", first_line("".join(traceback.format_exception_only(err[0], err[1]))))

    def addFailure(self, test, err):
        self.emit(test, "fail", first_line("".join(traceback.format_exception_only(err[0], err[1]))))

    def addSkip(self, test, reason):
        self.emit(test, "skip", first_line(str(reason)))

    def addExpectedFailure(self, test, err):
        self.emit(test, "xfail")

    def addUnexpectedSuccess(self, test):
        self.emit(test, "xpass")

    def addSubTest(self, test, subtest, err):
        if err is not None:
            kind = "fail" if issubclass(err[0], test.failureException) else "error"
            self.emit(test, kind, first_line("".join(traceback.format_exception_only(err[0], err[1]))))


def worker(modules, ids):
    """Runs the tests whose ids are in `ids`, in load order, reporting on standard output."""
    # The tests' own output goes to standard error so that standard output carries only reports.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    wanted = set(ids)
    tests = [t for t in load(modules) if t.id() in wanted]
    suite = unittest.TestSuite(tests)
    recorder = Recorder(out)
    suite.run(recorder)
    out.close()
    return RESTART if recorder.sticky else 0


def write_results(path, ids, results):
    """Every test's line, in load order; tests without a result yet are `pending`."""
    with open(path + ".tmp", "w") as f:
        for test_id in ids:
            outcome, reason = results.get(test_id, ("pending", ""))
            f.write(f"{test_id}\t{outcome}\t{reason}\n")
    os.replace(path + ".tmp", path)


def supervise(modules, ids, test_timeout, log, results, jobs, path):
    """Runs `ids` in `jobs` worker processes; fills `results` {id: (outcome, reason)} and keeps
    the results file at `path` current (a run that is stopped keeps what it learnt)."""
    written, last_write = 0, time.monotonic()
    shards = [[] for _ in range(jobs)]
    for test_id in ids:
        shards[zlib.crc32(test_id.encode()) % jobs].append(test_id)
    running = []

    def launch(remaining):
        if not remaining:
            return None
        process = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=log)
        process.stdin.write(json.dumps({"modules": modules, "ids": remaining}).encode())
        process.stdin.close()
        os.set_blocking(process.stdout.fileno(), False)
        return {"process": process, "remaining": list(remaining), "current": None,
                "progress": time.monotonic(), "buffer": ""}

    for shard in shards:
        state = launch(shard)
        if state:
            running.append(state)
    while running:
        time.sleep(0.2)
        if len(results) != written and time.monotonic() - last_write > 5:
            write_results(path, ids, results)
            written, last_write = len(results), time.monotonic()
        for state in list(running):
            process = state["process"]
            finished = process.poll() is not None  # before reading: what it wrote is then all there
            while True:
                try:
                    chunk = os.read(process.stdout.fileno(), 1 << 16)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                state["buffer"] += chunk.decode(errors="replace")
            *lines, state["buffer"] = state["buffer"].split("\n")
            for line in lines:
                if not line.strip():
                    continue
                event = json.loads(line)
                state["progress"] = time.monotonic()
                if "start" in event:
                    state["current"] = event["start"]
                else:
                    results[event["end"]] = (event["outcome"], event["reason"])
                    state["current"] = None
                    if event["end"] in state["remaining"]:
                        state["remaining"].remove(event["end"])
            stalled = time.monotonic() - state["progress"] > test_timeout
            if not finished and not stalled:
                continue
            if stalled and not finished:
                process.kill()
                process.wait()
            running.remove(state)
            process.stdout.close()
            current = state["current"]
            if current is not None:
                results[current] = ("timeout" if stalled and not finished else "crash",
                                    f"no result after {test_timeout} s" if stalled and not finished
                                    else f"worker exited with {process.returncode}")
                state["remaining"].remove(current)
            elif finished and state["remaining"] and process.returncode == RESTART:
                pass
            elif finished and state["remaining"] and process.returncode != 0:
                # The worker died before it started the next test (e.g. while loading): record the rest.
                for test_id in state["remaining"]:
                    results[test_id] = ("crash", f"worker exited with {process.returncode} before the test")
                state["remaining"] = []
            if current is not None or stalled or process.returncode == RESTART:
                replacement = launch(state["remaining"])
                if replacement:
                    running.append(replacement)


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--worker":
        spec = json.loads(sys.stdin.read())
        return worker(spec["modules"], spec["ids"])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="+")
    parser.add_argument("--results", required=True)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--test-timeout", type=float, default=300)
    parser.add_argument("--only")
    parser.add_argument("--log", help="file for the tests' own output (default: standard error)")
    args = parser.parse_args()
    ids = [t.id() for t in load(args.modules)]
    if args.only:
        with open(args.only) as f:
            listed = {line.split("#")[0].strip() for line in f} - {""}
        unknown = listed - set(ids)
        if unknown:
            print(f"run_suite: {len(unknown)} listed test(s) not in the suite, e.g. {sorted(unknown)[0]}", file=sys.stderr)
            return 2
        ids = [i for i in ids if i in listed]
    log = open(args.log, "w") if args.log else sys.stderr
    results = {}
    supervise(args.modules, ids, args.test_timeout, log, results, max(1, args.jobs), args.results)
    for test_id in ids:
        results.setdefault(test_id, ("crash", "never reported"))
    write_results(args.results, ids, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
