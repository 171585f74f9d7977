#!/usr/bin/env bash
# Synchronous-call latency on an idle machine, with the busy-poll on and off: 5 consecutive runs
# of `xpu-bench latency --load both` with `--busy-poll-us 200` (the default: shim and server spin up to 200 us;
# POLL_US changes it), 5 with it off (`--busy-poll-us 0`: shim and server block in
# recv), then `xpu-bench all` with each, and a
# summary of both against the target: the idle-machine p50 of the call through the shim at most
# 1.3x the busy-machine raw round trip between two processes in at least 4 of 5 runs, p99 at most
# 1.5x; busy-machine figures, launch rate and bandwidth not worse with the busy-poll on.
#
# Run it on a quiet machine (nothing else building or running): "idle" is only as idle as the
# machine; each run reports the share of the CPUs busy while it measured (machineBusy).
#
#   scripts/build.sh
#   swift build -c release --scratch-path .build-bench --product xpu-bench
#   bench/latency-bandwidth/idle-latency.sh [RESULTS.json]    (default: bench/latency-bandwidth/idle-latency.json)
#
# Environment: XPU_BENCH (the xpu-bench executable), RUNS (5), POLL_US (busy-poll for the "on"
# runs, microseconds; default 200), ITERATIONS (20000 calls per series and load), SKIP_ALL=1
# (leave out the two `xpu-bench all` runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
bench=${XPU_BENCH:-.build-bench/release/xpu-bench}
results=${1:-bench/latency-bandwidth/idle-latency.json}
runs=${RUNS:-5}
iterations=${ITERATIONS:-20000}
poll_on=(--busy-poll-us "${POLL_US:-200}")
[ -x "$bench" ] || { echo "no xpu-bench at $bench (build it, or set XPU_BENCH)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs" >&2

for mode in on off; do
    if [ "$mode" = on ]; then flags=("${poll_on[@]}"); else flags=(--busy-poll-us 0); fi
    for run in $(seq 1 "$runs"); do
        echo "==> latency, busy-poll $mode, run $run/$runs" >&2
        "$bench" latency --json --load both --iterations "$iterations" "${flags[@]}" > "$work/latency-$mode-$run.json"
    done
done
if [ "${SKIP_ALL:-0}" != 1 ]; then
    echo "==> all, busy-poll on" >&2
    "$bench" all --json --skip-slicing "${poll_on[@]}" > "$work/all-on.json"
    echo "==> all, busy-poll off" >&2
    "$bench" all --json --skip-slicing --busy-poll-us 0 > "$work/all-off.json"
fi

python3 - "$work" "$runs" "$results" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'EOF'
import json, os, sys, datetime, subprocess
work, runs, results, cores, load = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]

def series(condition, kind):
    return next((s for s in condition["series"] if s["kind"] == kind), None)

def run_summary(path):
    report = json.load(open(path))["latency"]
    conditions = {c["load"]: c for c in report["conditions"]}
    idle, busy = conditions["idle"], conditions["busy"]
    shim_idle, shim_busy = series(idle, "shim"), series(busy, "shim")
    raw_busy, raw_idle = series(busy, "raw-processes"), series(idle, "raw-processes")
    return {
        "clientBusyPollMicroseconds": report["clientBusyPollMicroseconds"],
        "machineBusyIdleCondition": idle["machineBusy"],
        "machineBusyBusyCondition": busy["machineBusy"],
        "shimIdle": {"p50": shim_idle["latency"]["p50"], "p99": shim_idle["latency"]["p99"],
                     "clientCPUPerCallUs": shim_idle["clientCPUPerCallMicroseconds"],
                     "serverCPUPerCallUs": shim_idle["serverCPUPerCallMicroseconds"]},
        "shimBusy": {"p50": shim_busy["latency"]["p50"], "p99": shim_busy["latency"]["p99"]},
        "pingIdle": {"p50": series(idle, "ping")["latency"]["p50"], "p99": series(idle, "ping")["latency"]["p99"]},
        "rawProcessesIdle": {"p50": raw_idle["latency"]["p50"], "p99": raw_idle["latency"]["p99"]},
        "rawProcessesBusy": {"p50": raw_busy["latency"]["p50"], "p99": raw_busy["latency"]["p99"]},
        "rawThreadsIdle": (lambda s: s and {"p50": s["latency"]["p50"], "p99": s["latency"]["p99"]})(series(idle, "raw-threads")),
        "ratioP50": shim_idle["latency"]["p50"] / raw_busy["latency"]["p50"],
        "ratioP99": shim_idle["latency"]["p99"] / raw_busy["latency"]["p99"],
        "ourWakeupsDuringRawIdle": idle["ourWakeupsDuringRaw"], "rawCallsIdle": idle["rawCalls"],
        "idleHold": report.get("idleHold"),
    }

summary = {}
for mode in ("on", "off"):
    per_run = [run_summary(os.path.join(work, f"latency-{mode}-{i}.json")) for i in range(1, runs + 1)]
    summary[mode] = {
        "runs": per_run,
        "p50WithinTarget": sum(r["ratioP50"] <= 1.3 for r in per_run),
        "p99WithinTarget": sum(r["ratioP99"] <= 1.5 for r in per_run),
    }
on, off = summary["on"], summary["off"]
# The idle condition keeps about one core busy itself (client and server take turns); more than
# 60% of all cores busy means something else ran, and the target cannot be judged.
quiet = all(r["machineBusyIdleCondition"] <= 0.6 for m in (on, off) for r in m["runs"])
verdict = {
    "target": "shim p50 idle <= 1.3x raw two-process p50 busy and p99 <= 1.5x, in >= 4 of 5 runs",
    "machineQuiet": quiet,
    "p50Met": on["p50WithinTarget"] >= 4 if runs == 5 and quiet else None,
    "p99Met": on["p99WithinTarget"] >= 4 if runs == 5 and quiet else None,
}
comparison = {}
if os.path.exists(os.path.join(work, "all-on.json")):
    figures = {}
    for mode in ("on", "off"):
        for f in json.load(open(os.path.join(work, f"all-{mode}.json")))["figures"]:
            if f["name"].startswith("launch rate") or f["name"].startswith(("HtoD", "DtoH")):
                # A name can have several baselines (raw TCP, LZ4 off): the pair is the key.
                key = f"{f['name']} (against {f['baselineName']})"
                figures.setdefault(key, {})[mode] = f["value"]
                # Against the baseline of its own run: the fairer comparison on a machine whose
                # load drifts between the two runs.
                figures[key][mode + "Ratio"] = f["ratio"]
    comparison = {name: {**v, "onOverOff": v["on"] / v["off"] if v.get("off") else None}
                  for name, v in figures.items() if "on" in v and "off" in v}

commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
report = {
    "command": "bench/latency-bandwidth/idle-latency.sh",
    "machine": {"cores": cores, "loadAverageBefore": load, "host": os.uname().nodename, "kernel": os.uname().release},
    "commit": commit, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "busyPollOn": on, "busyPollOff": off, "verdict": verdict, "allOnVersusOff": comparison,
}
json.dump(report, open(results, "w"), indent=2, sort_keys=True)

def row(label, r):
    return (f"{label:>4} p50 {r['shimIdle']['p50']:7.1f} p99 {r['shimIdle']['p99']:7.1f} | raw 2-proc busy p50 "
            f"{r['rawProcessesBusy']['p50']:6.1f} p99 {r['rawProcessesBusy']['p99']:6.1f} | ratio p50 {r['ratioP50']:.2f}x "
            f"p99 {r['ratioP99']:.2f}x | raw 2-proc idle p50 {r['rawProcessesIdle']['p50']:6.1f} | shim busy p50 "
            f"{r['shimBusy']['p50']:6.1f} | CPU/call client {r['shimIdle']['clientCPUPerCallUs']:.1f} server "
            f"{(r['shimIdle']['serverCPUPerCallUs'] or 0):.1f} us | machine busy {r['machineBusyIdleCondition']*100:.0f}%")
for mode in ("on", "off"):
    print(f"busy-poll {mode} (shim through TCP, idle machine; microseconds):")
    for i, r in enumerate(summary[mode]["runs"], 1):
        print(row(str(i), r))
    print(f"  within target: p50 {summary[mode]['p50WithinTarget']}/{runs}, p99 {summary[mode]['p99WithinTarget']}/{runs}")
for name, v in comparison.items():
    print(f"{name}: on {v['on']:.1f} ({v['onRatio']:.2f}x its baseline), off {v['off']:.1f} ({v['offRatio']:.2f}x); on/off {v['onOverOff']:.2f}x")
if not quiet:
    print("the machine was not quiet (over 60% of all cores busy during an idle condition): the target is not judged")
print(f"written to {results}")
EOF
