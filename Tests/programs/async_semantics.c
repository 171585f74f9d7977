/* Asynchronous semantics that fire-and-forget calls must keep: work on one stream runs in order,
 * data copied back is right after a synchronize, and an error caused by an asynchronous launch
 * is returned by the next synchronizing call (and sticks to the context), not by the launch. */
#include "xpu_test.h"

/* x[i] = x[i] * 2 + 1 for i < n; a second kernel writes through whatever pointer it is given. */
static const char *ptx =
    ".version 7.0\n"
    ".target sm_70\n"
    ".address_size 64\n"
    ".visible .entry step(.param .u64 x, .param .u32 n) {\n"
    "  .reg .pred %p; .reg .b32 %r<6>; .reg .b64 %rd<4>;\n"
    "  ld.param.u64 %rd1, [x]; ld.param.u32 %r1, [n];\n"
    "  mov.u32 %r2, %ctaid.x; mov.u32 %r3, %ntid.x; mov.u32 %r4, %tid.x;\n"
    "  mad.lo.s32 %r5, %r2, %r3, %r4;\n"
    "  setp.ge.u32 %p, %r5, %r1; @%p bra DONE;\n"
    "  cvta.to.global.u64 %rd2, %rd1; mul.wide.u32 %rd3, %r5, 4; add.s64 %rd2, %rd2, %rd3;\n"
    "  ld.global.u32 %r1, [%rd2]; shl.b32 %r1, %r1, 1; add.u32 %r1, %r1, 1; st.global.u32 [%rd2], %r1;\n"
    "DONE: ret;\n"
    "}\n"
    ".visible .entry poke(.param .u64 p) {\n"
    "  .reg .b32 %r1; .reg .b64 %rd1;\n"
    "  ld.param.u64 %rd1, [p]; mov.u32 %r1, 7; st.global.u32 [%rd1], %r1; ret;\n"
    "}\n";

#define N 4096

int main(void) {
    CUcontext ctx;
    xpu_setup_primary(&ctx);
    CUmodule module;
    CUfunction step, poke;
    CHECK(cuModuleLoadData(&module, ptx));
    CHECK(cuModuleGetFunction(&step, module, "step"));
    CHECK(cuModuleGetFunction(&poke, module, "poke"));

    CUstream stream;
    CHECK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
    CUdeviceptr x;
    CHECK(cuMemAlloc(&x, N * sizeof(unsigned)));
    unsigned n = N, host[N];

    /* In-order: memset to 3, then ten steps, then a copy back; all queued, then one synchronize. */
    CHECK(cuMemsetD32Async(x, 3, N, stream));
    void *args[] = {&x, &n};
    for (int i = 0; i < 10; i++) CHECK(cuLaunchKernel(step, N / 256, 1, 1, 256, 1, 1, 0, stream, args, NULL));
    CHECK(cuMemcpyDtoHAsync(host, x, sizeof host, stream));
    CHECK(cuStreamSynchronize(stream));
    unsigned expected = 3;
    for (int i = 0; i < 10; i++) expected = expected * 2 + 1;
    int ordered = 1;
    for (int i = 0; i < N; i++) ordered &= host[i] == expected;
    printf("ten steps in stream order: %s (x[0] = %u)\n", ordered ? "yes" : "no", host[0]);
    if (!ordered) xpu_failures++;

    /* Many small async copies interleaved with launches keep their order too. */
    for (int round = 0; round < 50; round++) {
        unsigned value = (unsigned)round;
        CHECK(cuMemcpyHtoDAsync(x, &value, sizeof value, stream));
        CHECK(cuLaunchKernel(step, 1, 1, 1, 1, 1, 1, 0, stream, args, NULL));
    }
    unsigned first = 0;
    CHECK(cuMemcpyDtoH(&first, x, sizeof first));
    CHECK(cuStreamSynchronize(stream));
    CHECK(cuMemcpyDtoH(&first, x, sizeof first));
    printf("last of 50 interleaved copy+step rounds: %u (expected %u)\n", first, 49u * 2 + 1);
    if (first != 49u * 2 + 1) xpu_failures++;

    /* An illegal address from an asynchronous launch: the launch itself succeeds, the next
     * synchronizing call reports it, and so does every later call in this context. */
    CUdeviceptr bogus = 0x10;
    void *poke_args[] = {&bogus};
    EXPECT("faulting launch", cuLaunchKernel(poke, 1, 1, 1, 1, 1, 1, 0, stream, poke_args, NULL), CUDA_SUCCESS);
    EXPECT("next synchronize", cuStreamSynchronize(stream), CUDA_ERROR_ILLEGAL_ADDRESS);
    EXPECT("context is broken afterwards", cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
    return xpu_finish();
}
