/* Synchronous and asynchronous copies and memsets, memory info, pinned host buffers. */
#include "xpu_test.h"

#define MiB ((size_t)1 << 20)

/* HtoD into a at offset offA, DtoD to b at offset offB, DtoH back; the bytes must survive. */
static void round_trip(size_t size, size_t offA, size_t offB, unsigned seed) {
    size_t allocA = size + offA > 0 ? size + offA : 1;
    size_t allocB = size + offB > 0 ? size + offB : 1;
    CUdeviceptr a = 0, b = 0;
    CHECK(cuMemAlloc(&a, allocA));
    CHECK(cuMemAlloc(&b, allocB));
    unsigned char *src = malloc(size + 1), *dst = malloc(size + 1);
    xpu_fill(src, size, seed);
    memset(dst, 0x5a, size + 1);
    CHECK(cuMemcpyHtoD(a + offA, src, size));
    CHECK(cuMemcpyDtoD(b + offB, a + offA, size));
    CHECK(cuMemcpyDtoH(dst, b + offB, size));
    int same = memcmp(src, dst, size) == 0 && dst[size] == 0x5a;
    printf("round trip %zu bytes at +%zu/+%zu: %s, hash %08x\n", size, offA, offB,
           same ? "ok" : "MISMATCH", xpu_hash(dst, size));
    if (!same) xpu_failures++;
    free(src);
    free(dst);
    CHECK(cuMemFree(a));
    CHECK(cuMemFree(b));
}

static int all_bytes(const unsigned char *p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != v) return 0;
    return 1;
}

static int all_words(const unsigned char *p, size_t count, unsigned v) {
    for (size_t i = 0; i < count; i++) {
        unsigned w;
        memcpy(&w, p + 4 * i, 4);
        if (w != v) return 0;
    }
    return 1;
}

static void memsets(CUstream stream) {
    const size_t n = 1 * MiB + 64;
    CUdeviceptr d = 0;
    CHECK(cuMemAlloc(&d, n));
    unsigned char *h = malloc(n);

    /* D8 over the interior leaves the first and last bytes alone. */
    CHECK(cuMemsetD8(d, 0x11, n));
    CHECK(cuMemsetD8(d + 1, 0xab, n - 2));
    CHECK(cuMemcpyDtoH(h, d, n));
    EXPECT_TRUE("memset D8 interior", all_bytes(h + 1, n - 2, 0xab));
    EXPECT_TRUE("memset D8 edges untouched", h[0] == 0x11 && h[n - 1] == 0x11);

    /* D32 at a 4-byte aligned offset. */
    CHECK(cuMemsetD32(d + 4, 0xdeadbeefu, (n - 8) / 4));
    CHECK(cuMemcpyDtoH(h, d, n));
    EXPECT_TRUE("memset D32 words", all_words(h + 4, (n - 8) / 4, 0xdeadbeefu));
    EXPECT_TRUE("memset D32 edges untouched", h[0] == 0x11 && all_bytes(h + 1, 3, 0xab) &&
                                                  all_bytes(h + n - 4, 3, 0xab) && h[n - 1] == 0x11);

    /* Async forms, ordered on one stream, then a copy on the same stream. */
    CHECK(cuMemsetD8Async(d, 0x00, n, stream));
    CHECK(cuMemsetD32Async(d + 64, 0x01020304u, 1000, stream));
    CHECK(cuMemsetD8Async(d + 64 + 4000, 0x7f, 3, stream));
    CHECK(cuMemcpyDtoHAsync(h, d, n, stream));
    CHECK(cuStreamSynchronize(stream));
    EXPECT_TRUE("async memsets: leading zeros", all_bytes(h, 64, 0));
    EXPECT_TRUE("async memsets: D32 words", all_words(h + 64, 1000, 0x01020304u));
    EXPECT_TRUE("async memsets: D8 tail", all_bytes(h + 4064, 3, 0x7f));
    EXPECT_TRUE("async memsets: trailing zeros", all_bytes(h + 4067, n - 4067, 0));
    printf("memset hash %08x\n", xpu_hash(h, n));

    free(h);
    CHECK(cuMemFree(d));
}

static void mem_info(void) {
    size_t free0 = 0, total0 = 0, free1 = 0, total1 = 0, free2 = 0, total2 = 0;
    CHECK(cuMemGetInfo(&free0, &total0));
    EXPECT_TRUE("free <= total", free0 <= total0);
    CUdeviceptr p = 0;
    CHECK(cuMemAlloc(&p, 64 * MiB));
    CHECK(cuMemGetInfo(&free1, &total1));
    EXPECT_TRUE("total unchanged by allocation", total1 == total0);
    EXPECT_TRUE("free decreased by at least 64 MiB", free1 + 64 * MiB <= free0);
    printf("free decrease in MiB, rounded to 64: %zu\n", ((free0 - free1 + 32 * MiB) / (64 * MiB)) * 64);
    CHECK(cuMemFree(p));
    CHECK(cuMemGetInfo(&free2, &total2));
    EXPECT_TRUE("free increased after cuMemFree", free2 > free1);
}

static void pinned(CUstream stream) {
    const size_t n = 3 * MiB + 5;
    unsigned char *hsrc = NULL, *hdst = NULL;
    CHECK(cuMemAllocHost((void **)&hsrc, n));
    CHECK(cuMemAllocHost((void **)&hdst, n));
    xpu_fill(hsrc, n, 77);
    memset(hdst, 0, n);
    CUdeviceptr d = 0;
    CHECK(cuMemAlloc(&d, n));
    CHECK(cuMemcpyHtoD(d, hsrc, n));
    CHECK(cuMemcpyDtoH(hdst, d, n));
    EXPECT_TRUE("pinned sync round trip", memcmp(hsrc, hdst, n) == 0);
    memset(hdst, 0, n);
    xpu_fill(hsrc, n, 78);
    CHECK(cuMemcpyHtoDAsync(d, hsrc, n, stream));
    CHECK(cuMemcpyDtoHAsync(hdst, d, n, stream));
    CHECK(cuStreamSynchronize(stream));
    EXPECT_TRUE("pinned async round trip", memcmp(hsrc, hdst, n) == 0);
    printf("pinned hash %08x\n", xpu_hash(hdst, n));
    CHECK(cuMemFree(d));
    CHECK(cuMemFreeHost(hsrc));
    CHECK(cuMemFreeHost(hdst));
}

static void pointer_attributes(void) {
    CUdeviceptr d = 0;
    CHECK(cuMemAlloc(&d, 4096));
    unsigned int type = 0;
    CHECK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d));
    printf("memory type of device pointer: %u (device is %u)\n", type, (unsigned)CU_MEMORYTYPE_DEVICE);
    type = 0;
    CHECK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d + 100));
    printf("memory type of interior pointer: %u\n", type);
    CHECK(cuMemFree(d));
}

int main(void) {
    CUcontext ctx;
    CUdevice dev = xpu_setup_primary(&ctx);

    const size_t sizes[] = {0, 1, 3, 4095, 4096, 4097, 65536, MiB + 13, 33 * MiB};
    unsigned seed = 1;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        round_trip(sizes[i], 0, 0, seed++);
        round_trip(sizes[i], 1, 7, seed++);
        round_trip(sizes[i], 4093, 256, seed++);
    }

    CUstream stream;
    CHECK(cuStreamCreate(&stream, 0));
    memsets(stream);
    mem_info();
    pinned(stream);
    pointer_attributes();
    CHECK(cuStreamDestroy(stream));

    xpu_teardown_primary(dev);
    return xpu_finish();
}
