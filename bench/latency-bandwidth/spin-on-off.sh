#!/usr/bin/env bash
# Does the busy-poll pay, and does it cost anything where it cannot? `xpu-bench latency` with
# the shim's and server's spin on (`--busy-poll-us 200`, the default; POLL_US changes it) and off
# (`--busy-poll-us 0`), alternating on/off RUNS times so that a machine whose load drifts affects
# both alike, under LOAD: busy (one core kept busy by `xpu-bench spin`), idle, or both. Writes the
# p50/p99 of the synchronous call through the shim and of the raw two-process round trip, per run
# and as medians, with the command and the machine.
#
#   scripts/build.sh          (or a dist/ with bin/xpu-remote-server, lib/libxpushim.so, lib/libxpusim.so)
#   LOAD=busy bench/latency-bandwidth/spin-on-off.sh [RESULTS.json]   (default: bench/latency-bandwidth/spin-on-off-$LOAD.json)
#
# The idle condition is honest only on a quiet machine (nothing else building or running); each
# run reports the share of all cores busy while it measured (machineBusy).
#
# Environment: XPU_BENCH (the xpu-bench executable, default dist/bin/xpu-bench), XPU_DIST (the
# dist/ it uses), LOAD (busy), RUNS (5), ITERATIONS (20000), POLL_US (200).
set -euo pipefail
cd "$(dirname "$0")/../.."
bench=${XPU_BENCH:-dist/bin/xpu-bench}
load=${LOAD:-busy}
results=${1:-bench/latency-bandwidth/spin-on-off-$load.json}
runs=${RUNS:-5}
iterations=${ITERATIONS:-20000}
poll_us=${POLL_US:-200}
dist_flags=()
[ -n "${XPU_DIST:-}" ] && dist_flags=(--dist "$XPU_DIST")
[ -x "$bench" ] || { echo "no xpu-bench at $bench (build it, or set XPU_BENCH)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for run in $(seq 1 "$runs"); do
    for mode in on off; do
        if [ "$mode" = on ]; then poll=$poll_us; else poll=0; fi
        echo "==> latency --load $load, busy-poll $mode, run $run/$runs" >&2
        "$bench" latency --json --load "$load" --iterations "$iterations" --busy-poll-us "$poll" --idle-seconds 0 \
            "${dist_flags[@]}" > "$work/$mode-$run.json"
    done
done

python3 - "$work" "$runs" "$results" "$load" "$poll_us" "$iterations" "$load_before" <<'PY'
import datetime, json, os, statistics, subprocess, sys
work, runs, results, load, poll_us, iterations, load_before = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]

def series(condition, kind):
    return next((s for s in condition["series"] if s["kind"] == kind), None)

def summary(path):
    report = json.load(open(path))["latency"]
    out = {}
    for condition in report["conditions"]:
        shim, raw = series(condition, "shim"), series(condition, "raw-processes")
        out[condition["load"]] = {
            "shimP50": shim["latency"]["p50"], "shimP99": shim["latency"]["p99"],
            "rawProcessesP50": raw["latency"]["p50"], "rawProcessesP99": raw["latency"]["p99"],
            "clientCPUPerCallUs": shim.get("clientCPUPerCallMicroseconds"),
            "serverCPUPerCallUs": shim.get("serverCPUPerCallMicroseconds"),
            "machineBusy": condition["machineBusy"],
        }
    return out

per_mode = {mode: [summary(os.path.join(work, f"{mode}-{run}.json")) for run in range(1, runs + 1)] for mode in ("on", "off")}
medians = {}
for mode, runs_of_mode in per_mode.items():
    for condition in runs_of_mode[0]:
        medians.setdefault(condition, {})[mode] = {
            key: statistics.median(r[condition][key] for r in runs_of_mode)
            for key in ("shimP50", "shimP99", "rawProcessesP50", "rawProcessesP99")
        }
for condition, m in medians.items():
    m["shimP50OnOverOff"] = m["on"]["shimP50"] / m["off"]["shimP50"]
    m["shimP99OnOverOff"] = m["on"]["shimP99"] / m["off"]["shimP99"]

commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
report = {
    "command": f"LOAD={load} RUNS={runs} ITERATIONS={iterations} POLL_US={poll_us} bench/latency-bandwidth/spin-on-off.sh",
    "machine": {"cores": os.cpu_count(), "loadAverageBefore": load_before, "loadAverageAfter": " ".join(open("/proc/loadavg").read().split()[:3]),
                "host": os.uname().nodename, "kernel": os.uname().release},
    "commit": commit, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "unit": "microseconds", "runs": per_mode, "medians": medians,
}
json.dump(report, open(results, "w"), indent=2, sort_keys=True)
for condition, m in medians.items():
    print(f"{condition}: shim p50 on {m['on']['shimP50']:.1f} off {m['off']['shimP50']:.1f} ({m['shimP50OnOverOff']:.3f}x), "
          f"p99 on {m['on']['shimP99']:.1f} off {m['off']['shimP99']:.1f} ({m['shimP99OnOverOff']:.3f}x); "
          f"raw 2-process p50 on-run {m['on']['rawProcessesP50']:.1f} off-run {m['off']['rawProcessesP50']:.1f}")
print(f"written to {results}")
PY
