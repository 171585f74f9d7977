// The OpenCL core path, for the differential end-to-end test (XPUEndToEndTests/OpenCLTests):
// run directly on the system's OpenCL (PoCL) and through libxpu-opencl.so against a server, it
// must print the same text. Platform and device queries, a buffer round trip (write, copy, fill,
// read, map), a vector add built from source (with an event and its profiling times), and error
// cases (a build failure with a log, an unknown kernel, a zero-size buffer, a wrong argument
// index, a read past the end). Prints no pointers or times; exits 0 when OpenCL behaved as
// documented.
#define CL_TARGET_OPENCL_VERSION 300
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                    \
    do {                                                               \
        cl_int status_ = (call);                                       \
        if (status_ != CL_SUCCESS) {                                   \
            printf("FAIL %s: %d (line %d)\n", #call, status_, __LINE__); \
            exit(1);                                                   \
        }                                                              \
    } while (0)

#define EXPECT(label, expected, actual)                                     \
    do {                                                                    \
        cl_int got_ = (actual);                                             \
        printf("%s: %d\n", label, got_);                                    \
        if (got_ != (expected)) {                                           \
            printf("FAIL %s: expected %d (line %d)\n", label, expected, __LINE__); \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

static const char *source =
    "__kernel void vadd(__global const float *a, __global const float *b, __global float *c, uint n) {\n"
    "    size_t i = get_global_id(0);\n"
    "    if (i < n) c[i] = a[i] + b[i];\n"
    "}\n"
    "__kernel void scale_local(__global int *data, __local int *scratch, int factor) {\n"
    "    size_t g = get_global_id(0), l = get_local_id(0);\n"
    "    scratch[l] = data[g] * factor;\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    data[g] = scratch[get_local_size(0) - 1 - l];\n"
    "}\n";

static uint64_t hash(const void *data, size_t size) {
    const unsigned char *bytes = data;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < size; i++) h = (h ^ bytes[i]) * 1099511628211ull;
    return h;
}

int main(void) {
    cl_platform_id platform;
    cl_uint platforms = 0;
    CHECK(clGetPlatformIDs(1, &platform, &platforms));
    printf("platforms: %s\n", platforms >= 1 ? "at least one" : "none");
    char text[1024];
    CHECK(clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof text, text, NULL));
    printf("platform name: %s\n", text);
    CHECK(clGetPlatformInfo(platform, CL_PLATFORM_VERSION, sizeof text, text, NULL));
    printf("platform version: %s\n", text);

    cl_device_id device;
    cl_uint devices = 0;
    CHECK(clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, &devices));
    printf("devices: %u\n", devices);
    CHECK(clGetDeviceInfo(device, CL_DEVICE_NAME, sizeof text, text, NULL));
    printf("device name: %s\n", text);
    cl_ulong memory = 0;
    CHECK(clGetDeviceInfo(device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof memory, &memory, NULL));
    printf("global memory: %llu\n", (unsigned long long)memory);
    cl_uint units = 0;
    CHECK(clGetDeviceInfo(device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof units, &units, NULL));
    printf("compute units: %s\n", units > 0 ? "some" : "none");
    cl_platform_id owner;
    CHECK(clGetDeviceInfo(device, CL_DEVICE_PLATFORM, sizeof owner, &owner, NULL));
    printf("device platform matches: %d\n", owner == platform);
    size_t size = 0;
    EXPECT("device info into a 1-byte buffer", CL_INVALID_VALUE, clGetDeviceInfo(device, CL_DEVICE_NAME, 1, text, &size));

    cl_int status;
    cl_context_properties properties[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)platform, 0};
    cl_context context = clCreateContext(properties, 1, &device, NULL, NULL, &status);
    CHECK(status);
    cl_uint contextDevices = 0;
    CHECK(clGetContextInfo(context, CL_CONTEXT_NUM_DEVICES, sizeof contextDevices, &contextDevices, NULL));
    printf("context devices: %u\n", contextDevices);
    cl_command_queue queue = clCreateCommandQueue(context, device, CL_QUEUE_PROFILING_ENABLE, &status);
    CHECK(status);

    // Buffers: write, copy, fill, read, map.
    enum { count = 300000 };
    size_t bytes = count * sizeof(int);
    int *host = malloc(bytes), *back = malloc(bytes);
    for (int i = 0; i < count; i++) host[i] = i * 7 - 5;
    cl_mem first = clCreateBuffer(context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, host, &status);
    CHECK(status);
    cl_mem second = clCreateBuffer(context, CL_MEM_READ_WRITE, bytes, NULL, &status);
    CHECK(status);
    CHECK(clEnqueueCopyBuffer(queue, first, second, 0, 0, bytes, 0, NULL, NULL));
    int pattern = 0x5a5a5a5a;
    CHECK(clEnqueueFillBuffer(queue, second, &pattern, sizeof pattern, 4096, 8192, 0, NULL, NULL));
    CHECK(clEnqueueReadBuffer(queue, second, CL_TRUE, 0, bytes, back, 0, NULL, NULL));
    printf("copy and fill hash: %016llx\n", (unsigned long long)hash(back, bytes));
    int small[5] = {1, 2, 3, 4, 5};
    CHECK(clEnqueueWriteBuffer(queue, second, CL_FALSE, 12, sizeof small, small, 0, NULL, NULL));
    CHECK(clFinish(queue));
    int *mapped = clEnqueueMapBuffer(queue, second, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0, 64, 0, NULL, NULL, &status);
    CHECK(status);
    printf("mapped: %d %d %d %d\n", mapped[2], mapped[3], mapped[7], mapped[8]);
    mapped[0] = 4242;
    CHECK(clEnqueueUnmapMemObject(queue, second, mapped, 0, NULL, NULL));
    int word = 0;
    CHECK(clEnqueueReadBuffer(queue, second, CL_TRUE, 0, sizeof word, &word, 0, NULL, NULL));
    printf("after unmap: %d\n", word);
    size_t reported = 0;
    CHECK(clGetMemObjectInfo(second, CL_MEM_SIZE, sizeof reported, &reported, NULL));
    printf("buffer size: %zu\n", reported);

    // A vector add from source.
    cl_program program = clCreateProgramWithSource(context, 1, &source, NULL, &status);
    CHECK(status);
    CHECK(clBuildProgram(program, 1, &device, "", NULL, NULL));
    cl_build_status built;
    CHECK(clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_STATUS, sizeof built, &built, NULL));
    printf("build status: %d\n", built);
    cl_kernel vadd = clCreateKernel(program, "vadd", &status);
    CHECK(status);
    cl_uint arguments = 0;
    CHECK(clGetKernelInfo(vadd, CL_KERNEL_NUM_ARGS, sizeof arguments, &arguments, NULL));
    printf("vadd arguments: %u\n", arguments);
    enum { n = 100003 };
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float)), *c = malloc(n * sizeof(float));
    for (int i = 0; i < n; i++) {
        a[i] = (float)i * 0.5f;
        b[i] = (float)(n - i);
    }
    cl_mem da = clCreateBuffer(context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, n * sizeof(float), a, &status);
    CHECK(status);
    cl_mem db = clCreateBuffer(context, CL_MEM_READ_ONLY, n * sizeof(float), NULL, &status);
    CHECK(status);
    CHECK(clEnqueueWriteBuffer(queue, db, CL_TRUE, 0, n * sizeof(float), b, 0, NULL, NULL));
    cl_mem dc = clCreateBuffer(context, CL_MEM_WRITE_ONLY, n * sizeof(float), NULL, &status);
    CHECK(status);
    cl_uint length = n;
    CHECK(clSetKernelArg(vadd, 0, sizeof(cl_mem), &da));
    CHECK(clSetKernelArg(vadd, 1, sizeof(cl_mem), &db));
    CHECK(clSetKernelArg(vadd, 2, sizeof(cl_mem), &dc));
    CHECK(clSetKernelArg(vadd, 3, sizeof length, &length));
    EXPECT("argument index past the end", CL_INVALID_ARG_INDEX, clSetKernelArg(vadd, 4, sizeof length, &length));
    size_t global = 100096, local = 64;
    cl_event done;
    CHECK(clEnqueueNDRangeKernel(queue, vadd, 1, NULL, &global, &local, 0, NULL, &done));
    CHECK(clWaitForEvents(1, &done));
    cl_int execution = -1;
    CHECK(clGetEventInfo(done, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof execution, &execution, NULL));
    printf("event status: %d\n", execution);
    cl_command_type command = 0;
    CHECK(clGetEventInfo(done, CL_EVENT_COMMAND_TYPE, sizeof command, &command, NULL));
    printf("event command: 0x%x\n", command);
    cl_ulong start = 0, end = 0;
    CHECK(clGetEventProfilingInfo(done, CL_PROFILING_COMMAND_START, sizeof start, &start, NULL));
    CHECK(clGetEventProfilingInfo(done, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL));
    printf("profiling end >= start: %d\n", end >= start);
    CHECK(clReleaseEvent(done));
    CHECK(clEnqueueReadBuffer(queue, dc, CL_TRUE, 0, n * sizeof(float), c, 0, NULL, NULL));
    int wrong = 0;
    for (int i = 0; i < n; i++) wrong += c[i] != a[i] + b[i];
    printf("vadd wrong elements: %d\n", wrong);

    // A __local argument.
    cl_kernel scale = clCreateKernel(program, "scale_local", &status);
    CHECK(status);
    int values[128];
    for (int i = 0; i < 128; i++) values[i] = i;
    cl_mem dv = clCreateBuffer(context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof values, values, &status);
    CHECK(status);
    int factor = 3;
    CHECK(clSetKernelArg(scale, 0, sizeof(cl_mem), &dv));
    CHECK(clSetKernelArg(scale, 1, 32 * sizeof(int), NULL));
    CHECK(clSetKernelArg(scale, 2, sizeof factor, &factor));
    size_t scaleGlobal = 128, scaleLocal = 32;
    CHECK(clEnqueueNDRangeKernel(queue, scale, 1, NULL, &scaleGlobal, &scaleLocal, 0, NULL, NULL));
    CHECK(clEnqueueReadBuffer(queue, dv, CL_TRUE, 0, sizeof values, values, 0, NULL, NULL));
    printf("local: %d %d %d %d\n", values[0], values[31], values[32], values[127]);

    // Errors, each followed by proof that the context still works.
    cl_kernel missing = clCreateKernel(program, "no_such_kernel", &status);
    EXPECT("unknown kernel", CL_INVALID_KERNEL_NAME, status);
    printf("unknown kernel handle is NULL: %d\n", missing == NULL);
    const char *broken = "__kernel void broken(__global int *p) { p[0] = undefined_name; }\n";
    cl_program bad = clCreateProgramWithSource(context, 1, &broken, NULL, &status);
    CHECK(status);
    EXPECT("build of a broken program", CL_BUILD_PROGRAM_FAILURE, clBuildProgram(bad, 1, &device, "", NULL, NULL));
    size_t logSize = 0;
    CHECK(clGetProgramBuildInfo(bad, device, CL_PROGRAM_BUILD_LOG, 0, NULL, &logSize));
    char *log = malloc(logSize + 1);
    CHECK(clGetProgramBuildInfo(bad, device, CL_PROGRAM_BUILD_LOG, logSize, log, NULL));
    printf("build log names the identifier: %d\n", strstr(log, "undefined_name") != NULL);
    CHECK(clReleaseProgram(bad));
    cl_mem empty = clCreateBuffer(context, CL_MEM_READ_WRITE, 0, NULL, &status);
    EXPECT("zero-size buffer", CL_INVALID_BUFFER_SIZE, status);
    printf("zero-size buffer is NULL: %d\n", empty == NULL);
    EXPECT("read past the end", CL_INVALID_VALUE, clEnqueueReadBuffer(queue, dv, CL_TRUE, 4, sizeof values, values, 0, NULL, NULL));
    CHECK(clEnqueueReadBuffer(queue, dc, CL_TRUE, 0, sizeof(float), c, 0, NULL, NULL));
    printf("still working: %g\n", c[0]);

    CHECK(clReleaseKernel(scale));
    CHECK(clReleaseKernel(vadd));
    CHECK(clReleaseProgram(program));
    for (cl_mem *m = (cl_mem[]){first, second, da, db, dc, dv}, *e = m + 6; m < e; m++) CHECK(clReleaseMemObject(*m));
    CHECK(clReleaseCommandQueue(queue));
    CHECK(clReleaseContext(context));
    printf("done\n");
    return 0;
}
