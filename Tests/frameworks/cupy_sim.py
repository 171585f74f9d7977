# CuPy through the driver it finds (the shim, or libxpusim.so directly): device set-up, an
# element-wise kernel, a reduction, a raw kernel and copies. Run with CUPY_COMPILE_WITH_PTX=1 so
# CuPy hands PTX to the driver (the simulated device interprets PTX; it runs no SASS).
# Prints one line per check; the differential test compares the output of the two runs.
import cupy as cp
import numpy as np

device = cp.cuda.Device(0)
device.use()
print("devices", cp.cuda.runtime.getDeviceCount())
major, minor = device.compute_capability[0], device.compute_capability[1:]
print("compute capability", device.compute_capability)

host = np.arange(1024, dtype=np.float32)
x = cp.asarray(host)
print("copy round trip", bool((cp.asnumpy(x) == host).all()))

add = cp.ElementwiseKernel("float32 a, float32 b", "float32 c", "c = a * 2.0f + b", "xpu_axpb")
y = add(x, cp.ones_like(x))
print("elementwise", cp.asnumpy(y)[:4].tolist(), float(cp.asnumpy(y)[-1]))

print("sum", float(x.sum()))
print("max", float(x.max()))
print("mean", float(x.mean()))

square = cp.RawKernel(r"""
extern "C" __global__ void square(const int *in, int *out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = in[i] * in[i];
}
""", "square")
ints = cp.arange(100, dtype=cp.int32)
out = cp.empty_like(ints)
square((1,), (128,), (ints, out, cp.int32(100)))
print("raw kernel", cp.asnumpy(out)[[0, 1, 9, 99]].tolist())

stream = cp.cuda.Stream(non_blocking=True)
with stream:
    z = x + 1
pinned = cp.cuda.alloc_pinned_memory(host.nbytes)
result = np.frombuffer(pinned, np.float32, host.size)
z.get(stream=stream, out=result)
stream.synchronize()
print("stream copy", result[:3].tolist())

pool = cp.get_default_memory_pool()
print("pool used bytes > 0", pool.used_bytes() > 0)
del x, y, z, ints, out
pool.free_all_blocks()
print("pool after free_all_blocks", pool.total_bytes())
