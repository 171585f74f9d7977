/* Streams and events: ordering of async work on a stream, queries, synchronization, timing. */
#include "xpu_test.h"

/* The header maps cuEventElapsedTime to cuEventElapsedTime_v2; reach the legacy symbol too. */
extern CUresult CUDAAPI legacy_cuEventElapsedTime(float *ms, CUevent start, CUevent end)
    __asm__("cuEventElapsedTime");

#define N ((size_t)4 << 20)

static int all_words(const unsigned char *p, size_t count, unsigned v) {
    for (size_t i = 0; i < count; i++) {
        unsigned w;
        memcpy(&w, p + 4 * i, 4);
        if (w != v) return 0;
    }
    return 1;
}

static int is_success_or_not_ready(CUresult r) {
    return r == CUDA_SUCCESS || r == CUDA_ERROR_NOT_READY;
}

int main(void) {
    CUcontext ctx;
    CUdevice dev = xpu_setup_primary(&ctx);

    CUstream s1, s2;
    CHECK(cuStreamCreate(&s1, CU_STREAM_DEFAULT));
    CHECK(cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING));
    EXPECT("cuStreamQuery(idle stream)", cuStreamQuery(s1), CUDA_SUCCESS);

    CUdeviceptr a1, b1, a2, b2;
    CHECK(cuMemAlloc(&a1, N));
    CHECK(cuMemAlloc(&b1, N));
    CHECK(cuMemAlloc(&a2, N));
    CHECK(cuMemAlloc(&b2, N));
    unsigned char *h1 = NULL, *h2 = NULL, *src = NULL;
    CHECK(cuMemAllocHost((void **)&h1, N));
    CHECK(cuMemAllocHost((void **)&h2, N));
    CHECK(cuMemAllocHost((void **)&src, N));
    xpu_fill(src, N, 9);

    /* Work queued on both streams at once; each stream keeps its own order. */
    CHECK(cuMemsetD32Async(a1, 0x11111111u, N / 4, s1));
    CHECK(cuMemsetD32Async(a2, 0x22222222u, N / 4, s2));
    CHECK(cuMemcpyDtoDAsync(b1, a1, N, s1));
    CHECK(cuMemcpyHtoDAsync(b2, src, N, s2));
    CHECK(cuMemcpyDtoHAsync(h1, b1, N, s1));
    CHECK(cuMemcpyDtoHAsync(h2, b2, N, s2));
    CUresult q = cuStreamQuery(s1);
    EXPECT_TRUE("cuStreamQuery(busy stream) is SUCCESS or NOT_READY", is_success_or_not_ready(q));
    CHECK(cuStreamSynchronize(s1));
    CHECK(cuStreamSynchronize(s2));
    EXPECT("cuStreamQuery(s1 after sync)", cuStreamQuery(s1), CUDA_SUCCESS);
    EXPECT("cuStreamQuery(s2 after sync)", cuStreamQuery(s2), CUDA_SUCCESS);
    EXPECT_TRUE("stream 1 sees memset then copy", all_words(h1, N / 4, 0x11111111u));
    EXPECT_TRUE("stream 2 sees host data", memcmp(h2, src, N) == 0);

    /* Ordering: a copy after a memset on the same stream sees the memset, repeatedly. */
    int ordered = 1;
    for (unsigned i = 0; i < 8; i++) {
        unsigned v = 0x01010101u * (i + 1);
        CHECK(cuMemcpyHtoDAsync(a1, src, N, s1));
        CHECK(cuMemsetD32Async(a1, v, N / 4, s1));
        CHECK(cuMemcpyDtoHAsync(h1, a1, N, s1));
        CHECK(cuStreamSynchronize(s1));
        if (!all_words(h1, N / 4, v)) ordered = 0;
    }
    EXPECT_TRUE("copy after memset sees the memset (8 rounds)", ordered);

    /* The legacy default stream orders too. */
    CHECK(cuMemsetD8Async(a2, 0x5c, N, NULL));
    CHECK(cuMemcpyDtoHAsync(h2, a2, N, NULL));
    CHECK(cuStreamSynchronize(NULL));
    int nullStreamOk = 1;
    for (size_t i = 0; i < N; i++)
        if (h2[i] != 0x5c) nullStreamOk = 0;
    EXPECT_TRUE("default stream memset then copy", nullStreamOk);

    /* Events with timing. */
    CUevent e0, e1, e2, never;
    CHECK(cuEventCreate(&e0, CU_EVENT_DEFAULT));
    CHECK(cuEventCreate(&e1, CU_EVENT_DEFAULT));
    CHECK(cuEventCreate(&e2, CU_EVENT_BLOCKING_SYNC));
    CHECK(cuEventCreate(&never, CU_EVENT_DEFAULT));
    EXPECT("cuEventQuery(never recorded)", cuEventQuery(never), CUDA_SUCCESS);
    EXPECT("cuEventSynchronize(never recorded)", cuEventSynchronize(never), CUDA_SUCCESS);

    CHECK(cuEventRecord(e0, s1));
    CHECK(cuMemsetD32Async(a1, 0x33333333u, N / 4, s1));
    CHECK(cuMemcpyDtoDAsync(b1, a1, N, s1));
    CHECK(cuEventRecord(e1, s1));
    CHECK(cuMemcpyDtoHAsync(h1, b1, N, s1));
    CHECK(cuEventRecord(e2, s1));
    q = cuEventQuery(e2);
    EXPECT_TRUE("cuEventQuery(pending) is SUCCESS or NOT_READY", is_success_or_not_ready(q));
    CHECK(cuEventSynchronize(e2));
    EXPECT("cuEventQuery(e2 after sync)", cuEventQuery(e2), CUDA_SUCCESS);
    EXPECT("cuEventQuery(e1 after e2)", cuEventQuery(e1), CUDA_SUCCESS);
    EXPECT_TRUE("data complete at e2", all_words(h1, N / 4, 0x33333333u));

    float t01 = -1, t02 = -1, t20 = 1, legacy02 = -1;
    CHECK(cuEventElapsedTime(&t01, e0, e1));
    CHECK(cuEventElapsedTime(&t02, e0, e2));
    CHECK(cuEventElapsedTime(&t20, e2, e0));
    CHECK(legacy_cuEventElapsedTime(&legacy02, e0, e2));
    EXPECT_TRUE("elapsed_ms(e0,e1) >= 0", t01 >= 0.0f);
    EXPECT_TRUE("elapsed_ms(e0,e2) >= elapsed_ms(e0,e1)", t02 >= t01);
    EXPECT_TRUE("elapsed_ms(e2,e0) <= 0", t20 <= 0.0f);
    EXPECT_TRUE("legacy elapsed_ms(e0,e2) >= 0", legacy02 >= 0.0f);

    float t = 0;
    EXPECT("cuEventElapsedTime(never recorded)", cuEventElapsedTime(&t, e0, never),
           CUDA_ERROR_INVALID_HANDLE);

    /* Events without timing synchronize but cannot be timed. */
    CUevent n0, n1;
    CHECK(cuEventCreate(&n0, CU_EVENT_DISABLE_TIMING));
    CHECK(cuEventCreate(&n1, CU_EVENT_DISABLE_TIMING));
    CHECK(cuEventRecord(n0, s2));
    CHECK(cuMemsetD32Async(a2, 0x44444444u, N / 4, s2));
    CHECK(cuMemcpyDtoHAsync(h2, a2, N, s2));
    CHECK(cuEventRecord(n1, s2));
    CHECK(cuEventSynchronize(n1));
    EXPECT("cuEventQuery(no-timing event)", cuEventQuery(n1), CUDA_SUCCESS);
    EXPECT_TRUE("data complete at no-timing event", all_words(h2, N / 4, 0x44444444u));
    EXPECT("cuEventElapsedTime(DISABLE_TIMING)", cuEventElapsedTime(&t, n0, n1),
           CUDA_ERROR_INVALID_HANDLE);
    EXPECT("legacy cuEventElapsedTime(DISABLE_TIMING)", legacy_cuEventElapsedTime(&t, n0, n1),
           CUDA_ERROR_INVALID_HANDLE);
    EXPECT("cuEventElapsedTime(timing, no-timing)", cuEventElapsedTime(&t, e0, n1),
           CUDA_ERROR_INVALID_HANDLE);

    /* Re-recording an event moves it. */
    CHECK(cuEventRecord(e1, s2));
    CHECK(cuEventSynchronize(e1));
    CHECK(cuEventElapsedTime(&t, e0, e1));
    EXPECT_TRUE("re-recorded event is later than e2", t >= t02);

    CHECK(cuCtxSynchronize());
    CHECK(cuEventDestroy(e0));
    CHECK(cuEventDestroy(e1));
    CHECK(cuEventDestroy(e2));
    CHECK(cuEventDestroy(never));
    CHECK(cuEventDestroy(n0));
    CHECK(cuEventDestroy(n1));
    CHECK(cuMemFreeHost(h1));
    CHECK(cuMemFreeHost(h2));
    CHECK(cuMemFreeHost(src));
    CHECK(cuMemFree(a1));
    CHECK(cuMemFree(b1));
    CHECK(cuMemFree(a2));
    CHECK(cuMemFree(b2));
    CHECK(cuStreamDestroy(s1));
    CHECK(cuStreamDestroy(s2));

    xpu_teardown_primary(dev);
    return xpu_finish();
}
