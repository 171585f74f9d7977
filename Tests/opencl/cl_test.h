/* Shared helpers of the OpenCL test programs: the first device of the first platform, a context
 * and a queue on it, program builds from source, and checks that print the error's name.
 * Everything printed is deterministic (no names of platforms or devices, no times, no addresses),
 * so the same program prints the same text directly on PoCL and through the ICD. */
#ifndef XPU_CL_TEST_H
#define XPU_CL_TEST_H

#define CL_TARGET_OPENCL_VERSION 300
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline const char *cl_error_name(cl_int code) {
    switch (code) {
#define NAME(x) case x: return #x;
        NAME(CL_SUCCESS) NAME(CL_DEVICE_NOT_FOUND) NAME(CL_DEVICE_NOT_AVAILABLE)
        NAME(CL_COMPILER_NOT_AVAILABLE) NAME(CL_MEM_OBJECT_ALLOCATION_FAILURE)
        NAME(CL_OUT_OF_RESOURCES) NAME(CL_OUT_OF_HOST_MEMORY) NAME(CL_PROFILING_INFO_NOT_AVAILABLE)
        NAME(CL_MEM_COPY_OVERLAP) NAME(CL_BUILD_PROGRAM_FAILURE) NAME(CL_MAP_FAILURE)
        NAME(CL_COMPILE_PROGRAM_FAILURE) NAME(CL_LINK_PROGRAM_FAILURE)
        NAME(CL_MISALIGNED_SUB_BUFFER_OFFSET) NAME(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
        NAME(CL_INVALID_VALUE) NAME(CL_INVALID_DEVICE_TYPE) NAME(CL_INVALID_PLATFORM)
        NAME(CL_INVALID_DEVICE) NAME(CL_INVALID_CONTEXT) NAME(CL_INVALID_QUEUE_PROPERTIES)
        NAME(CL_INVALID_COMMAND_QUEUE) NAME(CL_INVALID_HOST_PTR) NAME(CL_INVALID_MEM_OBJECT)
        NAME(CL_INVALID_BINARY) NAME(CL_INVALID_BUILD_OPTIONS) NAME(CL_INVALID_PROGRAM)
        NAME(CL_INVALID_PROGRAM_EXECUTABLE) NAME(CL_INVALID_KERNEL_NAME)
        NAME(CL_INVALID_KERNEL_DEFINITION) NAME(CL_INVALID_KERNEL) NAME(CL_INVALID_ARG_INDEX)
        NAME(CL_INVALID_ARG_VALUE) NAME(CL_INVALID_ARG_SIZE) NAME(CL_INVALID_KERNEL_ARGS)
        NAME(CL_INVALID_WORK_DIMENSION) NAME(CL_INVALID_WORK_GROUP_SIZE)
        NAME(CL_INVALID_WORK_ITEM_SIZE) NAME(CL_INVALID_GLOBAL_OFFSET)
        NAME(CL_INVALID_EVENT_WAIT_LIST) NAME(CL_INVALID_EVENT) NAME(CL_INVALID_OPERATION)
        NAME(CL_INVALID_BUFFER_SIZE) NAME(CL_INVALID_GLOBAL_WORK_SIZE)
#undef NAME
    default: return "unknown cl_int";
    }
}

/* A call that must succeed: on failure prints the call and the error's name and exits 1. */
#define CHECK(call)                                                                          \
    do {                                                                                     \
        cl_int check_status_ = (call);                                                       \
        if (check_status_ != CL_SUCCESS) {                                                   \
            printf("FAIL %s:%d: %s -> %s (%d)\n", __FILE__, __LINE__, #call,                 \
                   cl_error_name(check_status_), check_status_);                             \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

/* Prints `label: NAME` for a call's result; counts a failure unless it is `expected`. */
static int cl_test_failures;
#define EXPECT(label, call, expected)                                                        \
    do {                                                                                     \
        cl_int expect_status_ = (call);                                                      \
        printf("%s: %s\n", (label), cl_error_name(expect_status_));                          \
        if (expect_status_ != (expected)) {                                                  \
            printf("  expected %s\n", cl_error_name(expected));                              \
            cl_test_failures++;                                                              \
        }                                                                                    \
    } while (0)

#define EXPECT_TRUE(label, condition)                                                        \
    do {                                                                                     \
        int expect_true_ = (condition) ? 1 : 0;                                              \
        printf("%s: %s\n", (label), expect_true_ ? "yes" : "no");                            \
        if (!expect_true_) cl_test_failures++;                                               \
    } while (0)

/* Ends the program: prints PASS (exit 0) or the number of failed expectations (exit 1). */
static inline int cl_test_finish(void) {
    if (cl_test_failures == 0) {
        printf("PASS\n");
        return 0;
    }
    printf("FAILED %d expectation(s)\n", cl_test_failures);
    return 1;
}

typedef struct {
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;
} cl_test_env;

/* The first device of the first platform, a context and an in-order queue with `properties`
 * (0, or CL_QUEUE_PROFILING_ENABLE). */
static inline cl_test_env cl_test_open(cl_command_queue_properties properties) {
    cl_test_env env;
    cl_uint count = 0;
    CHECK(clGetPlatformIDs(1, &env.platform, &count));
    CHECK(clGetDeviceIDs(env.platform, CL_DEVICE_TYPE_ALL, 1, &env.device, NULL));
    cl_int status = CL_SUCCESS;
    env.context = clCreateContext(NULL, 1, &env.device, NULL, NULL, &status);
    CHECK(status);
    cl_queue_properties list[] = {CL_QUEUE_PROPERTIES, properties, 0};
    env.queue = clCreateCommandQueueWithProperties(env.context, env.device, properties ? list : NULL, &status);
    CHECK(status);
    return env;
}

static inline void cl_test_close(cl_test_env *env) {
    CHECK(clFinish(env->queue));
    CHECK(clReleaseCommandQueue(env->queue));
    CHECK(clReleaseContext(env->context));
}

/* A program built from `source` with `options`; exits with the build log when the build fails. */
static inline cl_program cl_test_build(cl_test_env *env, const char *source, const char *options) {
    cl_int status = CL_SUCCESS;
    cl_program program = clCreateProgramWithSource(env->context, 1, &source, NULL, &status);
    CHECK(status);
    status = clBuildProgram(program, 1, &env->device, options, NULL, NULL);
    if (status != CL_SUCCESS) {
        size_t size = 0;
        clGetProgramBuildInfo(program, env->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &size);
        char *log = calloc(size + 1, 1);
        clGetProgramBuildInfo(program, env->device, CL_PROGRAM_BUILD_LOG, size, log, NULL);
        printf("FAIL clBuildProgram -> %s\n%s\n", cl_error_name(status), log);
        exit(1);
    }
    return program;
}

static inline cl_kernel cl_test_kernel(cl_program program, const char *name) {
    cl_int status = CL_SUCCESS;
    cl_kernel kernel = clCreateKernel(program, name, &status);
    CHECK(status);
    return kernel;
}

static inline cl_mem cl_test_buffer(cl_test_env *env, cl_mem_flags flags, size_t size, void *host) {
    cl_int status = CL_SUCCESS;
    cl_mem buffer = clCreateBuffer(env->context, flags, size, host, &status);
    CHECK(status);
    return buffer;
}

/* FNV-1a over `size` bytes: a checksum to print instead of the data. */
static inline unsigned long long cl_test_hash(const void *data, size_t size) {
    const unsigned char *bytes = data;
    unsigned long long hash = 1469598103934665603ULL;
    for (size_t i = 0; i < size; i++) hash = (hash ^ bytes[i]) * 1099511628211ULL;
    return hash;
}

#endif
