// An OpenCL tenant that keeps its device busy with identical kernels during a common time window,
// for the compute-share benchmark (bench/compute-shares/run.sh opencl): ARGV = start
// (CLOCK_REALTIME, ms since the epoch), window (ms), loop iterations per work-item, kernels per
// batch (enqueued back to back, then one clFinish). Prints how many kernels completed inside the
// window.
#define CL_TARGET_OPENCL_VERSION 300
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static const char *source =
    "__kernel void spin(__global uint *out, uint rounds) {\n"
    "    uint x = get_global_id(0);\n"
    "    for (uint i = 0; i < rounds; i++) x = x * 1664525u + 1013904223u;\n"
    "    out[get_global_id(0)] = x;\n"
    "}\n";

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

#define CHECK(call)                                                           \
    do {                                                                      \
        cl_int status_ = (call);                                              \
        if (status_ != CL_SUCCESS) {                                          \
            fprintf(stderr, "%s:%d: %s: %d\n", __FILE__, __LINE__, #call, status_); \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s START_MS WINDOW_MS ITERATIONS BATCH\n", argv[0]);
        return 2;
    }
    double start = atof(argv[1]), end = start + atof(argv[2]);
    cl_uint rounds = (cl_uint)atoi(argv[3]);
    int batch = atoi(argv[4]);
    cl_platform_id platform;
    cl_device_id device;
    cl_int status;
    CHECK(clGetPlatformIDs(1, &platform, NULL));
    CHECK(clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, NULL));
    cl_context context = clCreateContext(NULL, 1, &device, NULL, NULL, &status);
    CHECK(status);
    cl_command_queue queue = clCreateCommandQueue(context, device, 0, &status);
    CHECK(status);
    cl_program program = clCreateProgramWithSource(context, 1, &source, NULL, &status);
    CHECK(status);
    CHECK(clBuildProgram(program, 1, &device, "", NULL, NULL));
    cl_kernel spin = clCreateKernel(program, "spin", &status);
    CHECK(status);
    cl_mem out = clCreateBuffer(context, CL_MEM_READ_WRITE, 64 * sizeof(cl_uint), NULL, &status);
    CHECK(status);
    CHECK(clSetKernelArg(spin, 0, sizeof out, &out));
    CHECK(clSetKernelArg(spin, 1, sizeof rounds, &rounds));
    size_t global = 1;
    // Warm up once (the platform compiles for the work size), then wait for the common start.
    CHECK(clEnqueueNDRangeKernel(queue, spin, 1, NULL, &global, NULL, 0, NULL, NULL));
    CHECK(clFinish(queue));
    while (now_ms() < start) usleep(1000);
    long completed = 0;
    while (1) {
        for (int i = 0; i < batch; i++) CHECK(clEnqueueNDRangeKernel(queue, spin, 1, NULL, &global, NULL, 0, NULL, NULL));
        CHECK(clFinish(queue));
        if (now_ms() > end) break;
        completed += batch;
    }
    printf("kernels %ld\n", completed);
    clReleaseMemObject(out);
    clReleaseKernel(spin);
    clReleaseProgram(program);
    clReleaseCommandQueue(queue);
    clReleaseContext(context);
    return 0;
}
