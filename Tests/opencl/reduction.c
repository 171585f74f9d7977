/* A sum reduction in two passes with __local memory: each work-group of 64 (and of 128) reduces
 * its slice in local memory with barriers, a second launch reduces the partial sums. The local
 * buffer is a kernel argument (clSetKernelArg with a size and a NULL value). Integers, so the
 * sum is exact and the same on every device. */
#include "cl_test.h"

static const char *source =
    "__kernel void partial_sums(__global const int *input, __global long *partial,\n"
    "                           __local long *scratch, const unsigned int n) {\n"
    "    size_t item = get_global_id(0), lane = get_local_id(0), width = get_local_size(0);\n"
    "    scratch[lane] = item < n ? (long)input[item] : 0;\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    for (size_t stride = width / 2; stride > 0; stride /= 2) {\n"
    "        if (lane < stride) scratch[lane] += scratch[lane + stride];\n"
    "        barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    }\n"
    "    if (lane == 0) partial[get_group_id(0)] = scratch[0];\n"
    "}\n"
    "__kernel void total(__global const long *partial, __global long *result, const unsigned int count) {\n"
    "    __local long sum;\n"
    "    if (get_local_id(0) == 0) sum = 0;\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    if (get_local_id(0) == 0) for (unsigned int i = 0; i < count; i++) sum += partial[i];\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    if (get_global_id(0) == 0) *result = sum;\n"
    "}\n";

int main(void) {
    cl_test_env env = cl_test_open(0);
    cl_program program = cl_test_build(&env, source, "");
    cl_kernel partial_sums = cl_test_kernel(program, "partial_sums");
    cl_kernel total = cl_test_kernel(program, "total");

    const cl_uint n = 1000003;
    int *input = malloc(n * sizeof(int));
    long long expected = 0;
    for (cl_uint i = 0; i < n; i++) {
        input[i] = (int)((i * 2654435761u) % 2001) - 1000;
        expected += input[i];
    }
    cl_mem dinput = cl_test_buffer(&env, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, n * sizeof(int), input);
    const size_t locals[] = {64, 128};
    for (size_t l = 0; l < sizeof locals / sizeof locals[0]; l++) {
        size_t local = locals[l];
        cl_uint groups = (cl_uint)((n + local - 1) / local);
        size_t global = groups * local;
        cl_mem dpartial = cl_test_buffer(&env, CL_MEM_READ_WRITE, groups * sizeof(cl_long), NULL);
        cl_mem dresult = cl_test_buffer(&env, CL_MEM_WRITE_ONLY, sizeof(cl_long), NULL);
        CHECK(clSetKernelArg(partial_sums, 0, sizeof(cl_mem), &dinput));
        CHECK(clSetKernelArg(partial_sums, 1, sizeof(cl_mem), &dpartial));
        CHECK(clSetKernelArg(partial_sums, 2, local * sizeof(cl_long), NULL));
        CHECK(clSetKernelArg(partial_sums, 3, sizeof(cl_uint), &n));
        CHECK(clEnqueueNDRangeKernel(env.queue, partial_sums, 1, NULL, &global, &local, 0, NULL, NULL));
        size_t one = 1;
        CHECK(clSetKernelArg(total, 0, sizeof(cl_mem), &dpartial));
        CHECK(clSetKernelArg(total, 1, sizeof(cl_mem), &dresult));
        CHECK(clSetKernelArg(total, 2, sizeof(cl_uint), &groups));
        CHECK(clEnqueueNDRangeKernel(env.queue, total, 1, NULL, &one, &one, 0, NULL, NULL));
        cl_long result = 0;
        CHECK(clEnqueueReadBuffer(env.queue, dresult, CL_TRUE, 0, sizeof result, &result, 0, NULL, NULL));
        cl_long *partial = malloc(groups * sizeof(cl_long));
        CHECK(clEnqueueReadBuffer(env.queue, dpartial, CL_TRUE, 0, groups * sizeof(cl_long), partial, 0, NULL, NULL));
        printf("local %zu: %u groups, sum %lld (expected %lld), partial sums hash %016llx\n", local, groups,
               (long long)result, expected, cl_test_hash(partial, groups * sizeof(cl_long)));
        if (result != expected) cl_test_failures++;
        free(partial);
        CHECK(clReleaseMemObject(dpartial));
        CHECK(clReleaseMemObject(dresult));
    }

    /* The kernel's local memory, as the device reports it for this launch shape. */
    cl_ulong local_bytes = 0;
    CHECK(clGetKernelWorkGroupInfo(total, env.device, CL_KERNEL_LOCAL_MEM_SIZE, sizeof local_bytes, &local_bytes, NULL));
    EXPECT_TRUE("total's static local memory holds its long", local_bytes >= sizeof(cl_long));

    CHECK(clReleaseMemObject(dinput));
    CHECK(clReleaseKernel(partial_sums));
    CHECK(clReleaseKernel(total));
    CHECK(clReleaseProgram(program));
    cl_test_close(&env);
    free(input);
    return cl_test_finish();
}
