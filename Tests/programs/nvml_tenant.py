"""One tenant, two APIs, in Python: allocates with the driver API through ctypes (libcuda.so.1,
the shim) and asks pynvml (libnvidia-ml.so.1, the same shim, the same session) and gpustat's
library what the device holds. Run through xpu-run with XPU_NVML_CACHE_MS=0 by
Tests/XPUEndToEndTests/NVMLTests.swift. Prints one JSON line per step and exits 0 when NVML and
cuMemGetInfo agree at every step."""

import ctypes
import json
import os
import sys

import pynvml

MiB = 1 << 20
cuda = ctypes.CDLL("libcuda.so.1")


def cu(name, *args):
    status = getattr(cuda, name)(*args)
    if status != 0:
        sys.exit(f"{name} -> CUresult {status}")


def cuda_memory():
    free, total = ctypes.c_size_t(), ctypes.c_size_t()
    cu("cuMemGetInfo_v2", ctypes.byref(free), ctypes.byref(total))
    return free.value, total.value


failures = 0
pynvml.nvmlInit()
cu("cuInit", 0)
context = ctypes.c_void_p()
cu("cuDevicePrimaryCtxRetain", ctypes.byref(context), 0)
cu("cuCtxSetCurrent", context)
handle = pynvml.nvmlDeviceGetHandleByIndex(0)
name = pynvml.nvmlDeviceGetName(handle)
print(json.dumps({"name": name, "driver": pynvml.nvmlSystemGetDriverVersion(),
                  "cuda": pynvml.nvmlSystemGetCudaDriverVersion_v2()}))

pointers = []
for step, size in enumerate([0, 96 * MiB, 160 * MiB, 256 * MiB]):
    if size:
        pointer = ctypes.c_uint64()
        cu("cuMemAlloc_v2", ctypes.byref(pointer), ctypes.c_size_t(size))
        pointers.append(pointer)
    free, total = cuda_memory()
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    memory2 = pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
    processes = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
    mine = [p.usedGpuMemory for p in processes if p.pid == os.getpid()]
    row = {"step": step, "cuda_used": total - free, "cuda_total": total, "nvml_used": memory.used,
           "nvml_total": memory.total, "nvml_v2_used": memory2.used, "process_used": mine}
    agree = (memory.used == total - free and memory.total == total and memory.free == free
             and memory2.used == memory.used and mine == [memory.used])
    row["agree"] = agree
    failures += 0 if agree else 1
    print(json.dumps(row))

# gpustat's own query, inside the tenant: it lists this process with its memory.
import gpustat  # noqa: E402  (after the allocations, so its query sees them)

stats = gpustat.new_query().jsonify()
gpu = stats["gpus"][0]
listed = [p for p in gpu["processes"] if p["pid"] == os.getpid()]
row = {"gpustat_name": gpu["name"], "gpustat_used_mib": gpu["memory.used"],
       "gpustat_total_mib": gpu["memory.total"], "gpustat_process_mib": [p["gpu_memory_usage"] for p in listed]}
agree = gpu["memory.used"] == (total - free) // MiB and [p["gpu_memory_usage"] for p in listed] == [(total - free) // MiB]
row["agree"] = agree
failures += 0 if agree else 1
print(json.dumps(row))

try:
    pynvml.nvmlDeviceGetFanSpeed(handle)
    unsupported = "answered"
except pynvml.NVMLError_NotSupported:
    unsupported = "NVML_ERROR_NOT_SUPPORTED"
print(json.dumps({"nvmlDeviceGetFanSpeed": unsupported}))
failures += 0 if unsupported == "NVML_ERROR_NOT_SUPPORTED" else 1
pynvml.nvmlShutdown()
print(json.dumps({"failures": failures}))
sys.exit(1 if failures else 0)
