"""Holds one CUDA session open and idle through the shim: cuInit, a context, a 1 MiB allocation,
then nothing until SIGTERM. Prints "idle" once the session is open (or "failed ..." and exits).

    XPU_SERVER=127.0.0.1:7070 python3 idle-client.py DIST/lib/libcuda.so.1
"""
import ctypes
import signal
import sys

cuda = ctypes.CDLL(sys.argv[1])
device = ctypes.c_int()
context = ctypes.c_void_p()
pointer = ctypes.c_uint64()
for name, call in [
    ("cuInit", lambda: cuda.cuInit(0)),
    ("cuDeviceGet", lambda: cuda.cuDeviceGet(ctypes.byref(device), 0)),
    ("cuCtxCreate_v2", lambda: cuda.cuCtxCreate_v2(ctypes.byref(context), 0, device)),
    ("cuMemAlloc_v2", lambda: cuda.cuMemAlloc_v2(ctypes.byref(pointer), ctypes.c_size_t(1 << 20))),
]:
    status = call()
    if status != 0:
        print(f"failed {name}: {status}", flush=True)
        sys.exit(1)
print("idle", flush=True)
signal.sigwait([signal.SIGTERM, signal.SIGINT])
