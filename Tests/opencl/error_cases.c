/* Error cases: a build that fails (CL_BUILD_PROGRAM_FAILURE, build status CL_BUILD_ERROR, a log
 * that names the undeclared identifier and its line), a kernel from an unbuilt program and an
 * unknown kernel name, invalid kernel arguments (index past the end, wrong size for a buffer and
 * for a scalar, a scalar without a value, a local argument with a value), a launch with
 * an argument never set, a zero-size buffer, a read past a buffer's end, an invalid work
 * dimension, and a global size that is not a multiple of the local size. After the errors, a good
 * launch proves the context still works. */
#include "cl_test.h"

static const char *broken =
    "__kernel void broken(__global int *out) {\n"
    "    out[get_global_id(0)] = undeclared_value;\n"
    "}\n";

static const char *good =
    "__kernel void fill(__global int *out, __local int *scratch, const int value) {\n"
    "    scratch[get_local_id(0)] = value;\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    out[get_global_id(0)] = scratch[get_local_id(0)] + (int)get_global_id(0);\n"
    "}\n";

int main(void) {
    cl_test_env env = cl_test_open(0);
    cl_int status = CL_SUCCESS;

    /* A failing build and its log. */
    cl_program bad = clCreateProgramWithSource(env.context, 1, &broken, NULL, &status);
    CHECK(status);
    EXPECT("build with an undeclared identifier", clBuildProgram(bad, 1, &env.device, "", NULL, NULL),
           CL_BUILD_PROGRAM_FAILURE);
    cl_build_status build_status = CL_BUILD_NONE;
    CHECK(clGetProgramBuildInfo(bad, env.device, CL_PROGRAM_BUILD_STATUS, sizeof build_status, &build_status, NULL));
    EXPECT_TRUE("build status is CL_BUILD_ERROR", build_status == CL_BUILD_ERROR);
    size_t log_size = 0;
    CHECK(clGetProgramBuildInfo(bad, env.device, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_size));
    char *log = calloc(log_size + 1, 1);
    CHECK(clGetProgramBuildInfo(bad, env.device, CL_PROGRAM_BUILD_LOG, log_size, log, NULL));
    EXPECT_TRUE("the log's size counts its terminating NUL", log_size > 0 && log[log_size - 1] == '\0');
    EXPECT_TRUE("the log names undeclared_value", strstr(log, "undeclared_value") != NULL);
    EXPECT_TRUE("the log points at line 2", strstr(log, ":2:") != NULL);
    free(log);
    cl_kernel none = clCreateKernel(bad, "broken", &status);
    printf("kernel from a failed build: %s, handle %s\n", cl_error_name(status), none ? "set" : "NULL");
    if (status != CL_INVALID_PROGRAM_EXECUTABLE || none) cl_test_failures++;
    CHECK(clReleaseProgram(bad));

    cl_program program = cl_test_build(&env, good, "");
    cl_kernel unknown = clCreateKernel(program, "no_such_kernel", &status);
    printf("unknown kernel name: %s, handle %s\n", cl_error_name(status), unknown ? "set" : "NULL");
    if (status != CL_INVALID_KERNEL_NAME || unknown) cl_test_failures++;
    cl_kernel kernel = cl_test_kernel(program, "fill");

    /* Invalid kernel arguments. */
    enum { N = 256 };
    cl_mem out = cl_test_buffer(&env, CL_MEM_READ_WRITE, N * sizeof(int), NULL);
    int value = 7;
    EXPECT("argument index past the end", clSetKernelArg(kernel, 3, sizeof(int), &value), CL_INVALID_ARG_INDEX);
    EXPECT("buffer argument with the wrong size", clSetKernelArg(kernel, 0, sizeof(cl_mem) / 2, &out), CL_INVALID_ARG_SIZE);
    EXPECT("scalar argument with the wrong size", clSetKernelArg(kernel, 2, sizeof(cl_long), &value), CL_INVALID_ARG_SIZE);
    EXPECT("scalar argument without a value", clSetKernelArg(kernel, 2, sizeof(int), NULL), CL_INVALID_ARG_VALUE);
    EXPECT("local argument with a value", clSetKernelArg(kernel, 1, 64, &value), CL_INVALID_ARG_VALUE);
    EXPECT("local argument of size 0", clSetKernelArg(kernel, 1, 0, NULL), CL_INVALID_ARG_SIZE);

    /* A launch before every argument is set. */
    size_t global = N, local = 64;
    CHECK(clSetKernelArg(kernel, 0, sizeof(cl_mem), &out));
    EXPECT("launch with arguments unset", clEnqueueNDRangeKernel(env.queue, kernel, 1, NULL, &global, &local, 0, NULL, NULL),
           CL_INVALID_KERNEL_ARGS);
    CHECK(clSetKernelArg(kernel, 1, local * sizeof(int), NULL));
    CHECK(clSetKernelArg(kernel, 2, sizeof(int), &value));
    EXPECT("work dimension 0", clEnqueueNDRangeKernel(env.queue, kernel, 0, NULL, &global, &local, 0, NULL, NULL),
           CL_INVALID_WORK_DIMENSION);
    /* OpenCL 3.0 makes non-uniform work-groups optional: whatever PoCL answers, the remote answers. */
    size_t uneven = 100;
    printf("global 100 with local 64: %s\n",
           cl_error_name(clEnqueueNDRangeKernel(env.queue, kernel, 1, NULL, &uneven, &local, 0, NULL, NULL)));
    CHECK(clFinish(env.queue));

    /* Buffers and transfers. */
    cl_mem empty = clCreateBuffer(env.context, CL_MEM_READ_WRITE, 0, NULL, &status);
    printf("zero-size buffer: %s, handle %s\n", cl_error_name(status), empty ? "set" : "NULL");
    if (status != CL_INVALID_BUFFER_SIZE || empty) cl_test_failures++;
    cl_mem conflicting = clCreateBuffer(env.context, CL_MEM_READ_ONLY | CL_MEM_WRITE_ONLY, 64, NULL, &status);
    printf("read-only and write-only at once: %s, handle %s\n", cl_error_name(status), conflicting ? "set" : "NULL");
    if (status != CL_INVALID_VALUE || conflicting) cl_test_failures++;
    cl_mem no_host = clCreateBuffer(env.context, CL_MEM_COPY_HOST_PTR, 64, NULL, &status);
    printf("CL_MEM_COPY_HOST_PTR without a host pointer: %s, handle %s\n", cl_error_name(status), no_host ? "set" : "NULL");
    if (status != CL_INVALID_HOST_PTR || no_host) cl_test_failures++;
    int host[N + 1];
    EXPECT("read past the end", clEnqueueReadBuffer(env.queue, out, CL_TRUE, 4, N * sizeof(int), host, 0, NULL, NULL),
           CL_INVALID_VALUE);
    EXPECT("read into NULL", clEnqueueReadBuffer(env.queue, out, CL_TRUE, 0, 4, NULL, 0, NULL, NULL), CL_INVALID_VALUE);
    EXPECT("a wait list with a NULL event", clEnqueueReadBuffer(env.queue, out, CL_TRUE, 0, 4, host, 1, NULL, NULL),
           CL_INVALID_EVENT_WAIT_LIST);

    /* The context still works: a good launch and its result. */
    CHECK(clEnqueueNDRangeKernel(env.queue, kernel, 1, NULL, &global, &local, 0, NULL, NULL));
    CHECK(clEnqueueReadBuffer(env.queue, out, CL_TRUE, 0, N * sizeof(int), host, 0, NULL, NULL));
    int wrong = 0;
    for (int i = 0; i < N; i++) wrong += host[i] != value + i;
    printf("good launch after the errors: %d wrong\n", wrong);
    if (wrong) cl_test_failures++;

    CHECK(clReleaseMemObject(out));
    CHECK(clReleaseKernel(kernel));
    CHECK(clReleaseProgram(program));
    cl_test_close(&env);
    return cl_test_finish();
}
