/* For the metrics test: allocates ARGV[1] MiB, launches a small kernel ARGV[2] times, waits for
 * them (cuCtxSynchronize), says "ready", then holds its session (and memory) until killed, so
 * that the test can compare what /metrics reports with what it did. */
#include <unistd.h>
#include "xpu_test.h"

static const char *ptx =
    ".version 7.0\n.target sm_70\n.address_size 64\n"
    ".visible .entry touch(.param .u64 p) {\n"
    "  .reg .b32 %r1; .reg .b64 %rd<3>;\n"
    "  ld.param.u64 %rd1, [p]; cvta.to.global.u64 %rd2, %rd1;\n"
    "  mov.u32 %r1, %tid.x; st.global.u32 [%rd2], %r1; ret;\n"
    "}\n";

int main(int argc, char **argv) {
    if (argc != 3 || atoi(argv[1]) <= 0 || atoi(argv[2]) < 0) {
        fprintf(stderr, "usage: %s MiB LAUNCHES\n", argv[0]);
        return 2;
    }
    size_t bytes = (size_t)atoi(argv[1]) << 20;
    int launches = atoi(argv[2]);
    CUcontext ctx;
    xpu_setup_primary(&ctx);
    CUmodule module;
    CUfunction touch;
    CHECK(cuModuleLoadData(&module, ptx));
    CHECK(cuModuleGetFunction(&touch, module, "touch"));
    CUdeviceptr d;
    CHECK(cuMemAlloc(&d, bytes));
    void *args[] = {&d};
    for (int i = 0; i < launches; i++) CHECK(cuLaunchKernel(touch, 4, 1, 1, 64, 1, 1, 0, NULL, args, NULL));
    CHECK(cuCtxSynchronize());
    printf("ready\n");
    fflush(stdout);
    for (;;) sleep(1);
}
