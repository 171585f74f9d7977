/* Loads the PTX of a vector add, launches it with kernelParams and with `extra`, and checks
 * function attributes and module lookups. */
#include "xpu_test.h"

#include "vadd_ptx.h"

static CUfunction vadd;

static void make_inputs(float *a, float *b, int n) {
    for (int i = 0; i < n; i++) {
        a[i] = (float)i * 0.5f + 0.25f;
        b[i] = (float)(n - i) * 0.125f - 3.0f;
    }
}

/* Launch with kernelParams; returns 1 when every element matches the host sum bit for bit. */
static int run_vadd(int n, unsigned block, int useExtra) {
    size_t bytes = (size_t)n * sizeof(float);
    float *a = malloc(bytes), *b = malloc(bytes), *c = malloc(bytes + sizeof(float));
    make_inputs(a, b, n);
    for (int i = 0; i <= n; i++) c[i] = -1.0f;

    CUdeviceptr da, db, dc;
    CHECK(cuMemAlloc(&da, bytes));
    CHECK(cuMemAlloc(&db, bytes));
    CHECK(cuMemAlloc(&dc, bytes + sizeof(float)));
    CHECK(cuMemcpyHtoD(da, a, bytes));
    CHECK(cuMemcpyHtoD(db, b, bytes));
    CHECK(cuMemcpyHtoD(dc, c, bytes + sizeof(float))); /* sentinel past the end */

    unsigned grid = ((unsigned)n + block - 1) / block;
    if (useExtra) {
        /* Parameter buffer laid out as the .entry declares it: u64, u64, u64, u32. */
        unsigned char buffer[28];
        memcpy(buffer + 0, &da, 8);
        memcpy(buffer + 8, &db, 8);
        memcpy(buffer + 16, &dc, 8);
        memcpy(buffer + 24, &n, 4);
        size_t size = sizeof buffer;
        void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, buffer, CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
                         CU_LAUNCH_PARAM_END};
        CHECK(cuLaunchKernel(vadd, grid, 1, 1, block, 1, 1, 0, NULL, NULL, extra));
    } else {
        void *params[] = {&da, &db, &dc, &n};
        CHECK(cuLaunchKernel(vadd, grid, 1, 1, block, 1, 1, 0, NULL, params, NULL));
    }
    CHECK(cuCtxSynchronize());
    CHECK(cuMemcpyDtoH(c, dc, bytes + sizeof(float)));

    int ok = 1;
    for (int i = 0; i < n; i++) {
        float expected = a[i] + b[i];
        if (memcmp(&c[i], &expected, sizeof(float)) != 0) ok = 0;
    }
    if (c[n] != -1.0f) ok = 0;
    printf("vadd n=%d block=%u grid=%u%s: %s, hash %08x\n", n, block, grid,
           useExtra ? " (extra)" : "", ok ? "ok" : "MISMATCH",
           xpu_hash((const unsigned char *)c, bytes));
    if (!ok) xpu_failures++;

    CHECK(cuMemFree(da));
    CHECK(cuMemFree(db));
    CHECK(cuMemFree(dc));
    free(a);
    free(b);
    free(c);
    return ok;
}

int main(void) {
    CUcontext ctx;
    CUdevice dev = xpu_setup_primary(&ctx);

    CUmodule module;
    CHECK(cuModuleLoadData(&module, vadd_ptx));
    CHECK(cuModuleGetFunction(&vadd, module, "vadd"));

    int maxThreads = 0;
    CHECK(cuFuncGetAttribute(&maxThreads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, vadd));
    EXPECT_TRUE("function max threads per block >= 256", maxThreads >= 256);
    int deviceMax = 0;
    CHECK(cuDeviceGetAttribute(&deviceMax, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, dev));
    EXPECT_TRUE("function max threads per block <= device max", maxThreads <= deviceMax);

    CUfunction missing = NULL;
    EXPECT("cuModuleGetFunction(unknown)", cuModuleGetFunction(&missing, module, "vsub"),
           CUDA_ERROR_NOT_FOUND);

    const unsigned blocks[] = {32, 128, 256, 1024};
    const int sizes[] = {1, 1000, 1 << 20};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++)
            if ((int)blocks[b] <= maxThreads) run_vadd(sizes[s], blocks[b], 0);
    run_vadd(1000, 128, 1);
    run_vadd(4097, 256, 1);

    /* A block larger than the device allows is rejected at launch. */
    CUdeviceptr dummy = 0;
    int n = 1;
    void *params[] = {&dummy, &dummy, &dummy, &n};
    EXPECT("cuLaunchKernel(block > max)",
           cuLaunchKernel(vadd, 1, 1, 1, (unsigned)deviceMax * 2, 1, 1, 0, NULL, params, NULL),
           CUDA_ERROR_INVALID_VALUE);

    CHECK(cuModuleUnload(module));
    xpu_teardown_primary(dev);
    return xpu_finish();
}
