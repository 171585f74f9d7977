"""A 10 Hz NVML poller, as a monitoring tool runs: every tick it asks what gpustat asks for each
device (name, UUID, temperature, memory, utilization, power and limit, processes). Run it through
xpu-run; see bench/nvml/README.md.

    python3 bench/nvml/poll.py [--seconds 60] [--hz 10]

Prints one JSON line at the end: ticks, NVML calls made, and the elapsed time."""

import argparse
import json
import time

import pynvml

parser = argparse.ArgumentParser()
parser.add_argument("--seconds", type=float, default=60)
parser.add_argument("--hz", type=float, default=10)
args = parser.parse_args()

pynvml.nvmlInit()
handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
calls = 0


def ask(function, *arguments):
    global calls
    calls += 1
    try:
        return function(*arguments)
    except pynvml.NVMLError:
        return None


start = time.monotonic()
ticks = 0
while time.monotonic() - start < args.seconds:
    for handle in handles:
        ask(pynvml.nvmlDeviceGetName, handle)
        ask(pynvml.nvmlDeviceGetUUID, handle)
        ask(pynvml.nvmlDeviceGetTemperature, handle, pynvml.NVML_TEMPERATURE_GPU)
        ask(pynvml.nvmlDeviceGetMemoryInfo, handle)
        ask(pynvml.nvmlDeviceGetUtilizationRates, handle)
        ask(pynvml.nvmlDeviceGetPowerUsage, handle)
        ask(pynvml.nvmlDeviceGetEnforcedPowerLimit, handle)
        ask(pynvml.nvmlDeviceGetComputeRunningProcesses, handle)
        ask(pynvml.nvmlDeviceGetGraphicsRunningProcesses, handle)
    ticks += 1
    next_tick = start + ticks / args.hz
    time.sleep(max(0.0, next_tick - time.monotonic()))
elapsed = time.monotonic() - start
pynvml.nvmlShutdown()
print(json.dumps({"ticks": ticks, "devices": len(handles), "nvml_calls": calls, "seconds": round(elapsed, 3)}))
