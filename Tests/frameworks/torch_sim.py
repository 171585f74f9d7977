# PyTorch (the PyPI wheel) through the driver it finds, on a CPU-only client. The wheel's kernels
# are SASS only (no PTX), so on the simulated device everything short of a kernel must work:
# start-up, device properties, the slice's memory, the caching allocator, copies with pageable and
# pinned memory, streams, events and synchronization; then a kernel launch must fail with
# PyTorch's own "no kernel image is available" error. On a real GPU the same script runs the
# kernel instead (the last check then passes the other way).
#
#   TORCH_SIM_EXPECT_TOTAL=<bytes>  the total cuda.mem_get_info() must report (the slice); optional
#
# Prints one line per check and "torch_sim: N passed, M failed" last; exits 1 when a check fails.
import os
import sys
import traceback

import torch

results = []


def check(name, condition, detail=""):
    results.append(bool(condition))
    print(f"{'ok' if condition else 'FAILED'}: {name}{(' (' + detail + ')') if detail else ''}", flush=True)


def step(name, body):
    try:
        body()
    except Exception as error:  # a failing step is reported and the next one still runs
        check(name, False, f"{type(error).__name__}: {error}")
        traceback.print_exc()


def start_up():
    check("torch.cuda.is_available()", torch.cuda.is_available())
    check("one device", torch.cuda.device_count() == 1, str(torch.cuda.device_count()))
    name = torch.cuda.get_device_name(0)
    properties = torch.cuda.get_device_properties(0)
    check("device name", len(name) > 0, name)
    check(
        "device properties",
        properties.total_memory > 0 and properties.multi_processor_count > 0,
        f"cc {properties.major}.{properties.minor}, {properties.multi_processor_count} SMs, "
        f"{properties.total_memory} bytes",
    )


def memory_info():
    free, total = torch.cuda.mem_get_info()
    expected = os.environ.get("TORCH_SIM_EXPECT_TOTAL")
    if expected:
        check("mem_get_info reports the slice", total == int(expected), f"total {total}, expected {expected}")
    check("mem_get_info free <= total", 0 < free <= total, f"free {free}, total {total}")


def allocation():
    before = torch.cuda.memory_allocated()
    a = torch.empty(1 << 20, dtype=torch.float32, device="cuda")
    check("torch.empty on cuda", a.is_cuda and a.numel() == 1 << 20)
    check("caching allocator counts it", torch.cuda.memory_allocated() - before >= a.numel() * 4)
    reserved = torch.cuda.memory_reserved()
    del a
    check("freed block stays reserved", torch.cuda.memory_reserved() == reserved)
    b = torch.empty(1 << 20, dtype=torch.float32, device="cuda")
    check("reserved block reused", torch.cuda.memory_reserved() == reserved)
    del b
    torch.cuda.empty_cache()
    check("empty_cache releases it", torch.cuda.memory_reserved() < reserved)


def copies():
    host = torch.arange(100_000, dtype=torch.float32)
    device = host.to("cuda")
    check("pageable round trip", torch.equal(device.cpu(), host))
    pinned = host.pin_memory()
    check("pinned memory", pinned.is_pinned())
    device2 = pinned.to("cuda", non_blocking=True)
    back = torch.empty_like(pinned).pin_memory()
    back.copy_(device2, non_blocking=True)
    torch.cuda.synchronize()
    check("pinned round trip", torch.equal(back, host))
    copy = torch.empty_like(device)
    copy.copy_(device)  # device to device: a copy engine call, no kernel
    check("device to device", torch.equal(copy.cpu(), host))


def streams_and_events():
    stream = torch.cuda.Stream()
    host = torch.arange(4096, dtype=torch.int64).pin_memory()
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    with torch.cuda.stream(stream):
        start.record()
        device = host.to("cuda", non_blocking=True)
        end.record()
    end.synchronize()
    check("event query after synchronize", end.query())
    check("elapsed_time", end.elapsed_time(start) is not None and start.elapsed_time(end) >= 0.0)
    stream.synchronize()
    torch.cuda.current_stream().wait_stream(stream)
    check("stream copy", torch.equal(device.cpu(), host))
    torch.cuda.synchronize()
    check("synchronize", stream.query())


def kernel_launch():
    try:
        ones = torch.ones(8, device="cuda")
        torch.cuda.synchronize()
        # A real GPU runs the kernel.
        check("kernel runs (real GPU)", torch.equal(ones.cpu(), torch.ones(8)))
    except RuntimeError as error:
        message = str(error)
        check("kernel launch fails cleanly", "no kernel image is available" in message, message.splitlines()[0])


for name, body in [
    ("start-up", start_up),
    ("memory info", memory_info),
    ("allocation", allocation),
    ("copies", copies),
    ("streams and events", streams_and_events),
    ("kernel launch", kernel_launch),
]:
    step(name, body)

failed = results.count(False)
print(f"torch_sim: {results.count(True)} passed, {failed} failed")
sys.exit(1 if failed else 0)
