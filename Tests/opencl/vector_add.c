/* Vector add built from source: blocking and non-blocking writes, the kernel for n = 1, 1000 and
 * 2^20 with and without a local size, a read back checked bit for bit against the host's sums,
 * and a sentinel past the end of the output left untouched. */
#include "cl_test.h"

static const char *source =
    "__kernel void vector_add(__global const float *a, __global const float *b,\n"
    "                         __global float *c, const unsigned int n) {\n"
    "    size_t i = get_global_id(0);\n"
    "    if (i < n) c[i] = a[i] + b[i];\n"
    "}\n";

int main(void) {
    cl_test_env env = cl_test_open(0);
    cl_program program = cl_test_build(&env, source, "");
    cl_kernel kernel = cl_test_kernel(program, "vector_add");

    const size_t max_n = 1 << 20;
    float *a = malloc(max_n * sizeof(float));
    float *b = malloc(max_n * sizeof(float));
    float *c = malloc((max_n + 1) * sizeof(float));
    for (size_t i = 0; i < max_n; i++) {
        a[i] = (float)(i % 1000) * 0.5f;
        b[i] = (float)(i % 77) * 0.25f - 3.0f;
    }
    cl_mem da = cl_test_buffer(&env, CL_MEM_READ_ONLY, max_n * sizeof(float), NULL);
    cl_mem db = cl_test_buffer(&env, CL_MEM_READ_ONLY, max_n * sizeof(float), NULL);
    cl_mem dc = cl_test_buffer(&env, CL_MEM_WRITE_ONLY, (max_n + 1) * sizeof(float), NULL);
    CHECK(clEnqueueWriteBuffer(env.queue, da, CL_TRUE, 0, max_n * sizeof(float), a, 0, NULL, NULL));
    CHECK(clEnqueueWriteBuffer(env.queue, db, CL_FALSE, 0, max_n * sizeof(float), b, 0, NULL, NULL));

    const size_t sizes[] = {1, 1000, 1 << 20};
    const size_t locals[] = {0, 64};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (size_t l = 0; l < sizeof locals / sizeof locals[0]; l++) {
            cl_uint n = (cl_uint)sizes[s];
            const float sentinel = -12345.0f;
            for (size_t i = 0; i <= max_n; i++) c[i] = sentinel;
            CHECK(clEnqueueWriteBuffer(env.queue, dc, CL_FALSE, 0, (max_n + 1) * sizeof(float), c, 0, NULL, NULL));
            CHECK(clSetKernelArg(kernel, 0, sizeof(cl_mem), &da));
            CHECK(clSetKernelArg(kernel, 1, sizeof(cl_mem), &db));
            CHECK(clSetKernelArg(kernel, 2, sizeof(cl_mem), &dc));
            CHECK(clSetKernelArg(kernel, 3, sizeof(cl_uint), &n));
            size_t local = locals[l];
            size_t global = local ? (n + local - 1) / local * local : n;
            CHECK(clEnqueueNDRangeKernel(env.queue, kernel, 1, NULL, &global, local ? &local : NULL, 0, NULL, NULL));
            CHECK(clEnqueueReadBuffer(env.queue, dc, CL_TRUE, 0, (max_n + 1) * sizeof(float), c, 0, NULL, NULL));
            size_t wrong = 0;
            for (size_t i = 0; i < n; i++) {
                float expected = a[i] + b[i];
                if (memcmp(&c[i], &expected, sizeof expected) != 0) wrong++;
            }
            size_t touched = 0;
            for (size_t i = n; i <= max_n; i++) touched += c[i] != sentinel;
            printf("n=%u local=%zu: %zu wrong, %zu past the end touched, hash %016llx\n", n, local, wrong,
                   touched, cl_test_hash(c, n * sizeof(float)));
            if (wrong || touched) cl_test_failures++;
        }
    }

    CHECK(clReleaseMemObject(da));
    CHECK(clReleaseMemObject(db));
    CHECK(clReleaseMemObject(dc));
    CHECK(clReleaseKernel(kernel));
    CHECK(clReleaseProgram(program));
    cl_test_close(&env);
    free(a);
    free(b);
    free(c);
    return cl_test_finish();
}
