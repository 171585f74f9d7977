# cuda.core's PTX path through the driver it finds (the shim, or libxpusim.so directly): NVRTC
# compiles C++ to PTX on the client, ObjectCode hands the PTX to the driver (cuLibraryLoadData),
# the kernel is launched with a LaunchConfig on a stream, and the results are copied back.
# Prints one line per check; the differential test compares the output of the two runs.
import numpy as np
from cuda.bindings import driver
from cuda.core import Device, LaunchConfig, Program, ProgramOptions, launch


def check(result):
    status = result[0]
    if status != driver.CUresult.CUDA_SUCCESS:
        raise RuntimeError(f"driver call failed: {status}")
    return result[1:]

SOURCE = r"""
extern "C" __global__ void saxpy(float a, const float *x, const float *y, float *out, unsigned int n) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = a * x[i] + y[i];
}
"""

device = Device(0)
device.set_current()
major, minor = device.compute_capability
print("device", device.device_id, "compute capability", f"{major}.{minor}")
stream = device.create_stream()

options = ProgramOptions(arch=f"compute_{major}{minor}", std="c++17")
program = Program(SOURCE, code_type="c++", options=options)
ptx = program.compile("ptx")
print("ptx kind", ptx.code_type)
kernel = ptx.get_kernel("saxpy")
print("kernel loaded")

n = 1000
x = np.arange(n, dtype=np.float32)
y = np.full(n, 2.0, dtype=np.float32)
buffers = [device.memory_resource.allocate(n * 4, stream=stream) for _ in range(3)]
host = [x, y, np.zeros(n, dtype=np.float32)]
# Host arrays reach the device through the driver API (cuda.core's Buffer copies device buffers).
for buffer, array in zip(buffers[:2], host[:2]):
    check(driver.cuMemcpyHtoDAsync(int(buffer.handle), array.ctypes.data, array.nbytes, int(stream.handle)))
stream.sync()

config = LaunchConfig(grid=(n + 127) // 128, block=128)
launch(stream, config, kernel, np.float32(3.0), buffers[0], buffers[1], buffers[2], np.uint32(n))
stream.sync()
result = np.empty(n, dtype=np.float32)
check(driver.cuMemcpyDtoHAsync(result.ctypes.data, int(buffers[2].handle), result.nbytes, int(stream.handle)))
stream.sync()
print("saxpy", result[:4].tolist(), float(result[-1]))
print("matches numpy", bool(np.allclose(result, 3.0 * x + y)))
for buffer in buffers:
    buffer.close(stream)
stream.sync()
print("done")
