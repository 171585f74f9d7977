/* Managed memory (cuMemAllocManaged) and mapped host memory (cuMemHostAlloc and
 * cuMemHostRegister with DEVICEMAP): the host writes, a kernel reads and writes, the host reads
 * after a synchronization; memsets and copies see and are seen by the host; pointer attributes,
 * host flags, device pointers; advice and prefetch as hints; every free path; device memory
 * accounting. */
#include <stdint.h>
#include "xpu_test.h"
#include "vadd_ptx.h"

#define N 3000

static int sums_ok(const float *a, const float *b, const float *c, int n) {
    for (int i = 0; i < n; i++)
        if (c[i] != a[i] + b[i]) return 0;
    return 1;
}

static void fill(float *a, float *b, int n, float scale) {
    for (int i = 0; i < n; i++) {
        a[i] = (float)i * scale;
        b[i] = (float)(n - i);
    }
}

static void vadd(CUfunction f, CUdeviceptr a, CUdeviceptr b, CUdeviceptr c, CUstream stream) {
    unsigned int n = N;
    void *params[] = {&a, &b, &c, &n};
    CHECK(cuLaunchKernel(f, (N + 255) / 256, 1, 1, 256, 1, 1, 0, stream, params, NULL));
}

int main(void) {
    CUcontext ctx;
    CUdevice dev = xpu_setup_primary(&ctx);
    CUmodule module;
    CUfunction f;
    CHECK(cuModuleLoadData(&module, vadd_ptx));
    CHECK(cuModuleGetFunction(&f, module, "vadd"));
    size_t bytes = N * sizeof(float);
    size_t free_before = 0, free_during = 0, free_after = 0, total = 0;
    CHECK(cuMemGetInfo(&free_before, &total));

    /* Managed memory: one address, written and read by both sides. */
    CUdeviceptr ma, mb, mc;
    CHECK(cuMemAllocManaged(&ma, bytes, CU_MEM_ATTACH_GLOBAL));
    CHECK(cuMemAllocManaged(&mb, bytes, CU_MEM_ATTACH_GLOBAL));
    CHECK(cuMemAllocManaged(&mc, bytes, CU_MEM_ATTACH_HOST));
    float *ha = (float *)(uintptr_t)ma, *hb = (float *)(uintptr_t)mb, *hc = (float *)(uintptr_t)mc;
    EXPECT_TRUE("managed starts zeroed", hc[0] == 0.0f && hc[N - 1] == 0.0f);
    fill(ha, hb, N, 1.0f);
    vadd(f, ma, mb, mc, NULL);
    CHECK(cuCtxSynchronize());
    EXPECT_TRUE("managed kernel result seen by host", sums_ok(ha, hb, hc, N));
    /* The host changes its inputs again: the next launch reads the new values. */
    fill(ha, hb, N, 3.0f);
    vadd(f, ma, mb, mc, NULL);
    CHECK(cuStreamSynchronize(NULL));
    EXPECT_TRUE("managed second launch sees host writes", sums_ok(ha, hb, hc, N));
    /* The kernel writes its output into an input: a = a + b. */
    float expected = ha[7] + hb[7];
    vadd(f, ma, mb, ma, NULL);
    CUevent done;
    CHECK(cuEventCreate(&done, 0));
    CHECK(cuEventRecord(done, NULL));
    CHECK(cuEventSynchronize(done));
    EXPECT_TRUE("managed in-place result after event sync", ha[7] == expected);
    /* A synchronous memset and copies: the host sees the memset, copies see host writes. */
    CHECK(cuMemsetD32(mc, 0x3f800000u, N)); /* 1.0f */
    EXPECT_TRUE("managed memset seen by host", hc[0] == 1.0f && hc[N - 1] == 1.0f);
    hc[5] = 42.0f;
    float back[N];
    CHECK(cuMemcpyDtoH(back, mc, bytes));
    EXPECT_TRUE("copy from managed sees host write", back[5] == 42.0f && back[6] == 1.0f);
    float source[N];
    for (int i = 0; i < N; i++) source[i] = (float)(2 * i);
    CHECK(cuMemcpyHtoD(mc, source, bytes));
    EXPECT_TRUE("copy into managed seen by host", hc[10] == 20.0f);
    unsigned int is_managed = 0, mapped = 0, type = 0;
    CHECK(cuPointerGetAttribute(&is_managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, ma + 64));
    CHECK(cuPointerGetAttribute(&mapped, CU_POINTER_ATTRIBUTE_MAPPED, ma));
    CHECK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, ma));
    EXPECT_TRUE("managed pointer is managed and mapped", is_managed == 1 && mapped == 1);
    EXPECT_TRUE("managed memory type is device", type == CU_MEMORYTYPE_DEVICE);
    CUdeviceptr start = 0;
    size_t size = 0;
    CHECK(cuPointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, ma + 100));
    CHECK(cuPointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_RANGE_SIZE, ma + 100));
    EXPECT_TRUE("managed range", start == ma && size == bytes);
    CUcontext owner = NULL;
    CHECK(cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_CONTEXT, ma));
    EXPECT_TRUE("managed pointer's context", owner == ctx);
    CHECK(cuMemGetInfo(&free_during, &total));
    EXPECT_TRUE("managed memory is charged to the device", free_before - free_during >= 3 * bytes);
    CUmemLocation on_device, on_host;
    memset(&on_device, 0, sizeof on_device);
    memset(&on_host, 0, sizeof on_host);
    on_device.type = CU_MEM_LOCATION_TYPE_DEVICE;
    on_host.type = CU_MEM_LOCATION_TYPE_HOST;
    EXPECT("advise read mostly", cuMemAdvise(ma, bytes, CU_MEM_ADVISE_SET_READ_MOSTLY, on_device), CUDA_SUCCESS);
    EXPECT("advise preferred host", cuMemAdvise(mb + 64, 64, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, on_host), CUDA_SUCCESS);
    EXPECT("prefetch to device", cuMemPrefetchAsync(mc, bytes, on_device, 0, NULL), CUDA_SUCCESS);
    EXPECT_ERROR("prefetch past the end", cuMemPrefetchAsync(mc, bytes + 1, on_device, 0, NULL));
    CUdeviceptr plain;
    CHECK(cuMemAlloc(&plain, 256));
    EXPECT_ERROR("advise on device memory", cuMemAdvise(plain, 256, CU_MEM_ADVISE_SET_READ_MOSTLY, on_device));
    is_managed = 1;
    CHECK(cuPointerGetAttribute(&is_managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, plain));
    EXPECT_TRUE("device memory is not managed", is_managed == 0);
    CHECK(cuMemFree(plain));
    EXPECT_ERROR("managed zero bytes", cuMemAllocManaged(&ma, 0, CU_MEM_ATTACH_GLOBAL));
    EXPECT_ERROR("managed bad flags", cuMemAllocManaged(&ma, 16, 0));
    CHECK(cuMemFree(ma));
    CHECK(cuMemFree(mb));
    CHECK(cuMemFree(mc));
    EXPECT_ERROR("managed double free", cuMemFree(mc));

    /* Mapped page-locked memory from cuMemHostAlloc. */
    float *pa, *pb, *pc;
    CHECK(cuMemHostAlloc((void **)&pa, bytes, CU_MEMHOSTALLOC_DEVICEMAP));
    CHECK(cuMemHostAlloc((void **)&pb, bytes, CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_PORTABLE));
    CHECK(cuMemHostAlloc((void **)&pc, bytes, CU_MEMHOSTALLOC_DEVICEMAP));
    CUdeviceptr da, db, dc;
    CHECK(cuMemHostGetDevicePointer(&da, pa, 0));
    CHECK(cuMemHostGetDevicePointer(&db, pb, 0));
    CHECK(cuMemHostGetDevicePointer(&dc, pc, 0));
    CUdeviceptr interior = 0;
    CHECK(cuMemHostGetDevicePointer(&interior, pb + 10, 0));
    EXPECT_TRUE("mapped interior device pointer", interior == db + 10 * sizeof(float));
    EXPECT_ERROR("device pointer of unmapped memory", cuMemHostGetDevicePointer(&interior, source, 0));
    EXPECT_ERROR("device pointer with flags", cuMemHostGetDevicePointer(&interior, pa, 1));
    unsigned int flags = 0;
    CHECK(cuMemHostGetFlags(&flags, pb));
    EXPECT_TRUE("mapped flags", flags == (CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_PORTABLE));
    fill(pa, pb, N, 2.0f);
    CUstream stream;
    CHECK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
    vadd(f, da, db, dc, stream);
    CHECK(cuStreamSynchronize(stream));
    EXPECT_TRUE("mapped kernel result seen by host", sums_ok(pa, pb, pc, N));
    CHECK(cuMemsetD8(dc, 0, bytes));
    EXPECT_TRUE("mapped memset seen by host", pc[0] == 0.0f && pc[N - 1] == 0.0f);
    mapped = 0;
    CHECK(cuPointerGetAttribute(&mapped, CU_POINTER_ATTRIBUTE_MAPPED, (CUdeviceptr)(uintptr_t)pa));
    CHECK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, (CUdeviceptr)(uintptr_t)pa));
    EXPECT_TRUE("mapped host memory type", mapped == 1 && type == CU_MEMORYTYPE_HOST);
    CHECK(cuMemFreeHost(pa));
    CHECK(cuMemFreeHost(pb));
    CHECK(cuMemFreeHost(pc));
    EXPECT_ERROR("mapped double free", cuMemFreeHost(pc));

    /* The program's own memory, registered and mapped. */
    static float ra[N], rb[N], rc[N];
    fill(ra, rb, N, 5.0f);
    CHECK(cuMemHostRegister(ra, bytes, CU_MEMHOSTREGISTER_DEVICEMAP));
    CHECK(cuMemHostRegister(rb, bytes, CU_MEMHOSTREGISTER_DEVICEMAP));
    CHECK(cuMemHostRegister(rc, bytes, CU_MEMHOSTREGISTER_DEVICEMAP));
    CHECK(cuMemHostGetDevicePointer(&da, ra, 0));
    CHECK(cuMemHostGetDevicePointer(&db, rb, 0));
    CHECK(cuMemHostGetDevicePointer(&dc, rc, 0));
    vadd(f, da, db, dc, NULL);
    CHECK(cuCtxSynchronize());
    EXPECT_TRUE("registered kernel result seen by host", sums_ok(ra, rb, rc, N));
    CHECK(cuMemHostUnregister(ra));
    CHECK(cuMemHostUnregister(rb));
    CHECK(cuMemHostUnregister(rc));
    EXPECT_ERROR("device pointer after unregister", cuMemHostGetDevicePointer(&da, ra, 0));
    EXPECT_TRUE("registered memory kept its contents", sums_ok(ra, rb, rc, N));

    CHECK(cuMemGetInfo(&free_after, &total));
    EXPECT_TRUE("every byte given back", free_after == free_before);
    CHECK(cuStreamDestroy(stream));
    CHECK(cuEventDestroy(done));
    CHECK(cuModuleUnload(module));
    xpu_teardown_primary(dev);
    printf("coherent_memory: %s\n", xpu_failures == 0 ? "ok" : "FAILED");
    return xpu_failures == 0 ? 0 : 1;
}
