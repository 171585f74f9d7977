/* Matrix multiply without images: a naive kernel and a tiled one (16x16 tiles in __local memory),
 * 2-D NDRanges, non-square shapes (M=96, K=80, N=112) and a square 256; small integers in floats,
 * so every product is exact and both kernels must match the host bit for bit. Build options are
 * passed through (-D TILE=16). */
#include "cl_test.h"

static const char *source =
    "__kernel void naive(__global const float *a, __global const float *b, __global float *c,\n"
    "                    const int m, const int k, const int n) {\n"
    "    int row = get_global_id(1), column = get_global_id(0);\n"
    "    if (row >= m || column >= n) return;\n"
    "    float sum = 0.0f;\n"
    "    for (int i = 0; i < k; i++) sum += a[row * k + i] * b[i * n + column];\n"
    "    c[row * n + column] = sum;\n"
    "}\n"
    "__kernel void tiled(__global const float *a, __global const float *b, __global float *c,\n"
    "                    const int m, const int k, const int n) {\n"
    "    __local float ta[TILE][TILE];\n"
    "    __local float tb[TILE][TILE];\n"
    "    int lr = get_local_id(1), lc = get_local_id(0);\n"
    "    int row = get_group_id(1) * TILE + lr, column = get_group_id(0) * TILE + lc;\n"
    "    float sum = 0.0f;\n"
    "    for (int t = 0; t < (k + TILE - 1) / TILE; t++) {\n"
    "        int ac = t * TILE + lc, br = t * TILE + lr;\n"
    "        ta[lr][lc] = row < m && ac < k ? a[row * k + ac] : 0.0f;\n"
    "        tb[lr][lc] = br < k && column < n ? b[br * n + column] : 0.0f;\n"
    "        barrier(CLK_LOCAL_MEM_FENCE);\n"
    "        for (int i = 0; i < TILE; i++) sum += ta[lr][i] * tb[i][lc];\n"
    "        barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    }\n"
    "    if (row < m && column < n) c[row * n + column] = sum;\n"
    "}\n";

static void multiply(cl_test_env *env, cl_kernel naive, cl_kernel tiled, int m, int k, int n) {
    float *a = malloc((size_t)m * k * sizeof(float));
    float *b = malloc((size_t)k * n * sizeof(float));
    float *c = malloc((size_t)m * n * sizeof(float));
    float *expected = malloc((size_t)m * n * sizeof(float));
    for (int i = 0; i < m * k; i++) a[i] = (float)((i * 7) % 9 - 4);
    for (int i = 0; i < k * n; i++) b[i] = (float)((i * 5) % 11 - 5);
    for (int r = 0; r < m; r++)
        for (int col = 0; col < n; col++) {
            float sum = 0.0f;
            for (int i = 0; i < k; i++) sum += a[r * k + i] * b[i * n + col];
            expected[r * n + col] = sum;
        }
    cl_mem da = cl_test_buffer(env, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, (size_t)m * k * sizeof(float), a);
    cl_mem db = cl_test_buffer(env, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, (size_t)k * n * sizeof(float), b);
    cl_mem dc = cl_test_buffer(env, CL_MEM_WRITE_ONLY, (size_t)m * n * sizeof(float), NULL);
    cl_kernel kernels[] = {naive, tiled};
    const char *names[] = {"naive", "tiled"};
    for (int which = 0; which < 2; which++) {
        cl_kernel kernel = kernels[which];
        CHECK(clSetKernelArg(kernel, 0, sizeof(cl_mem), &da));
        CHECK(clSetKernelArg(kernel, 1, sizeof(cl_mem), &db));
        CHECK(clSetKernelArg(kernel, 2, sizeof(cl_mem), &dc));
        CHECK(clSetKernelArg(kernel, 3, sizeof(int), &m));
        CHECK(clSetKernelArg(kernel, 4, sizeof(int), &k));
        CHECK(clSetKernelArg(kernel, 5, sizeof(int), &n));
        size_t local[2] = {16, 16};
        size_t global[2] = {(size_t)(n + 15) / 16 * 16, (size_t)(m + 15) / 16 * 16};
        CHECK(clEnqueueNDRangeKernel(env->queue, kernel, 2, NULL, global, which ? local : NULL, 0, NULL, NULL));
        memset(c, 0, (size_t)m * n * sizeof(float));
        CHECK(clEnqueueReadBuffer(env->queue, dc, CL_TRUE, 0, (size_t)m * n * sizeof(float), c, 0, NULL, NULL));
        int wrong = memcmp(c, expected, (size_t)m * n * sizeof(float)) != 0;
        printf("%s %dx%d * %dx%d: %s, c[0]=%.0f c[last]=%.0f hash %016llx\n", names[which], m, k, k, n,
               wrong ? "WRONG" : "exact", c[0], c[m * n - 1], cl_test_hash(c, (size_t)m * n * sizeof(float)));
        if (wrong) cl_test_failures++;
    }
    CHECK(clReleaseMemObject(da));
    CHECK(clReleaseMemObject(db));
    CHECK(clReleaseMemObject(dc));
    free(a);
    free(b);
    free(c);
    free(expected);
}

int main(void) {
    cl_test_env env = cl_test_open(0);
    cl_program program = cl_test_build(&env, source, "-D TILE=16");
    cl_kernel naive = cl_test_kernel(program, "naive");
    cl_kernel tiled = cl_test_kernel(program, "tiled");
    cl_uint arguments = 0;
    CHECK(clGetKernelInfo(tiled, CL_KERNEL_NUM_ARGS, sizeof arguments, &arguments, NULL));
    printf("tiled takes %u arguments\n", arguments);
    multiply(&env, naive, tiled, 96, 80, 112);
    multiply(&env, naive, tiled, 256, 256, 256);
    CHECK(clReleaseKernel(naive));
    CHECK(clReleaseKernel(tiled));
    CHECK(clReleaseProgram(program));
    cl_test_close(&env);
    return cl_test_finish();
}
