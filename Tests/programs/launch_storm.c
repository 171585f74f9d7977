/* For the kill test: holds ARGV[1] MiB, says "ready", then queues asynchronous launches and
 * copies forever. The test kills it with SIGKILL while calls are still queued and checks that the
 * server frees everything it held. */
#include "xpu_test.h"

static const char *ptx =
    ".version 7.0\n.target sm_70\n.address_size 64\n"
    ".visible .entry touch(.param .u64 p) {\n"
    "  .reg .b32 %r1; .reg .b64 %rd<3>;\n"
    "  ld.param.u64 %rd1, [p]; cvta.to.global.u64 %rd2, %rd1;\n"
    "  mov.u32 %r1, %tid.x; st.global.u32 [%rd2], %r1; ret;\n"
    "}\n";

int main(int argc, char **argv) {
    if (argc != 2 || atoi(argv[1]) <= 0) {
        fprintf(stderr, "usage: %s MiB\n", argv[0]);
        return 2;
    }
    size_t bytes = (size_t)atoi(argv[1]) << 20;
    CUcontext ctx;
    xpu_setup_primary(&ctx);
    CUmodule module;
    CUfunction touch;
    CHECK(cuModuleLoadData(&module, ptx));
    CHECK(cuModuleGetFunction(&touch, module, "touch"));
    CUstream streams[4];
    for (int i = 0; i < 4; i++) CHECK(cuStreamCreate(&streams[i], CU_STREAM_NON_BLOCKING));
    CUdeviceptr d;
    CHECK(cuMemAlloc(&d, bytes));
    CUevent event;
    CHECK(cuEventCreate(&event, CU_EVENT_DISABLE_TIMING));
    printf("ready\n");
    fflush(stdout);
    unsigned char small[256] = {1};
    void *args[] = {&d};
    for (unsigned long i = 0;; i++) {
        CUstream s = streams[i % 4];
        CHECK(cuLaunchKernel(touch, 2, 1, 1, 64, 1, 1, 0, s, args, NULL));
        CHECK(cuMemcpyHtoDAsync(d + (i % 1024) * 256, small, sizeof small, s));
        CHECK(cuMemsetD8Async(d, (unsigned char)i, 4096, s));
        CHECK(cuEventRecord(event, s));
        if (i % 4096 == 4095) CHECK(cuStreamSynchronize(s));
    }
}
