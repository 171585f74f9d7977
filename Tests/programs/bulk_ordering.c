/* Bulk copies keep stream order while a kernel is still running: a copy queued behind a slow
 * kernel on the same stream lands after the kernel's stores (host-to-device: the copy's data wins;
 * device-to-host: the copy reads the kernel's result), a synchronous copy waits for a kernel on a
 * blocking stream (legacy-stream ordering), with data that travels raw (random) and data that
 * travels compressed (zeros); and a copy behind a kernel that faults reports the sticky error. */
#include "xpu_test.h"

/* x[i] = value for i < n, each thread after counting to `spins` (a slow kernel). */
static const char *ptx =
    ".version 7.0\n"
    ".target sm_70\n"
    ".address_size 64\n"
    ".visible .entry slow_fill(.param .u64 x, .param .u32 n, .param .u32 value, .param .u32 spins) {\n"
    "  .reg .pred %p; .reg .b32 %r<8>; .reg .b64 %rd<4>;\n"
    "  ld.param.u64 %rd1, [x]; ld.param.u32 %r1, [n]; ld.param.u32 %r6, [value]; ld.param.u32 %r7, [spins];\n"
    "  mov.u32 %r2, %ctaid.x; mov.u32 %r3, %ntid.x; mov.u32 %r4, %tid.x;\n"
    "  mad.lo.s32 %r5, %r2, %r3, %r4;\n"
    "  setp.ge.u32 %p, %r5, %r1; @%p bra DONE;\n"
    "  mov.u32 %r2, 0;\n"
    "SPIN:\n"
    "  add.u32 %r2, %r2, 1; setp.lt.u32 %p, %r2, %r7; @%p bra SPIN;\n"
    "  cvta.to.global.u64 %rd2, %rd1; mul.wide.u32 %rd3, %r5, 4; add.s64 %rd2, %rd2, %rd3;\n"
    "  st.global.u32 [%rd2], %r6;\n"
    "DONE: ret;\n"
    "}\n";

#define WORDS 256           /* words the kernel writes, at the start of the buffer */
#define SPINS 4000
#define BYTES ((9u << 20) + 12) /* three chunks: 4 MiB, 4 MiB, the rest */

static CUfunction slow_fill;

static void launch(CUdeviceptr x, unsigned value, CUstream stream) {
    unsigned n = WORDS, spins = SPINS;
    void *args[] = {&x, &n, &value, &spins};
    CHECK(cuLaunchKernel(slow_fill, 1, 1, 1, WORDS, 1, 1, 0, stream, args, NULL));
}

static int all_words(const unsigned char *p, unsigned value) {
    for (int i = 0; i < WORDS; i++) {
        unsigned w;
        memcpy(&w, p + 4 * i, 4);
        if (w != value) return 0;
    }
    return 1;
}

int main(void) {
    CUcontext ctx;
    xpu_setup_primary(&ctx);
    CUmodule module;
    CHECK(cuModuleLoadData(&module, ptx));
    CHECK(cuModuleGetFunction(&slow_fill, module, "slow_fill"));
    CUstream nonblocking, blocking;
    CHECK(cuStreamCreate(&nonblocking, CU_STREAM_NON_BLOCKING));
    CHECK(cuStreamCreate(&blocking, 0));
    CUdeviceptr x;
    CHECK(cuMemAlloc(&x, BYTES));
    unsigned char *data = malloc(BYTES), *back = malloc(BYTES);
    static const char *kinds[] = {"random", "zeros"};

    for (int kind = 0; kind < 2; kind++) {
        if (kind == 0) xpu_fill(data, BYTES, 5);
        else memset(data, 0, BYTES);

        /* Host to device, asynchronous, behind the kernel on the same stream: the copy wins. */
        CHECK(cuMemsetD8(x, 0xFF, BYTES));
        launch(x, 0x11111111u, nonblocking);
        CHECK(cuMemcpyHtoDAsync(x, data, BYTES, nonblocking));
        CHECK(cuStreamSynchronize(nonblocking));
        memset(back, 0xEE, BYTES);
        CHECK(cuMemcpyDtoH(back, x, BYTES));
        EXPECT_TRUE("async HtoD after the kernel on its stream", memcmp(back, data, BYTES) == 0);

        /* Host to device, synchronous (legacy stream), after a kernel on a blocking stream. */
        CHECK(cuMemsetD8(x, 0xFF, BYTES));
        launch(x, 0x22222222u, blocking);
        CHECK(cuMemcpyHtoD(x, data, BYTES));
        memset(back, 0xEE, BYTES);
        CHECK(cuMemcpyDtoH(back, x, BYTES));
        EXPECT_TRUE("sync HtoD after a kernel on a blocking stream", memcmp(back, data, BYTES) == 0);

        /* Device to host, asynchronous, behind the kernel: the copy reads the kernel's result. */
        CHECK(cuMemcpyHtoD(x, data, BYTES));
        launch(x, 0x33333333u, nonblocking);
        memset(back, 0xEE, BYTES);
        CHECK(cuMemcpyDtoHAsync(back, x, BYTES, nonblocking));
        CHECK(cuStreamSynchronize(nonblocking));
        EXPECT_TRUE("async DtoH sees the kernel's stores",
                    all_words(back, 0x33333333u) && memcmp(back + 4 * WORDS, data + 4 * WORDS, BYTES - 4 * WORDS) == 0);

        /* Device to host, synchronous, after a kernel on a blocking stream. */
        launch(x, 0x44444444u, blocking);
        memset(back, 0xEE, BYTES);
        CHECK(cuMemcpyDtoH(back, x, BYTES));
        EXPECT_TRUE("sync DtoH sees the blocking stream's kernel",
                    all_words(back, 0x44444444u) && memcmp(back + 4 * WORDS, data + 4 * WORDS, BYTES - 4 * WORDS) == 0);
        printf("%s: hash %08x\n", kinds[kind], xpu_hash(back, BYTES));
    }

    /* A copy behind a kernel that faults: the copy does not run, the error sticks. */
    unsigned zero = 0;
    CHECK(cuMemcpyHtoD(x, &zero, sizeof zero));
    CUdeviceptr bogus = 0x10;
    unsigned n = 1, value = 9, spins = 1;
    void *args[] = {&bogus, &n, &value, &spins};
    CHECK(cuLaunchKernel(slow_fill, 1, 1, 1, 1, 1, 1, 0, nonblocking, args, NULL));
    unsigned one = 1;
    cuMemcpyHtoDAsync(x, &one, sizeof one, nonblocking); /* queued or refused: both are CUDA */
    EXPECT("synchronize after the fault", cuStreamSynchronize(nonblocking), CUDA_ERROR_ILLEGAL_ADDRESS);
    EXPECT("sync HtoD afterwards", cuMemcpyHtoD(x, data, BYTES), CUDA_ERROR_ILLEGAL_ADDRESS);
    EXPECT("sync DtoH afterwards", cuMemcpyDtoH(back, x, BYTES), CUDA_ERROR_ILLEGAL_ADDRESS);
    free(data);
    free(back);
    return xpu_finish();
}
