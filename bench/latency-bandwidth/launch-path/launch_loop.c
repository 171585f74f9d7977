/* Rounds of N cuLaunchKernel calls of an empty kernel (or one with three pointer parameters when
 * a second argument is given) and one cuCtxSynchronize, timed. Linked against libxpusim.so it
 * runs direct; against libcuda.so.1 from dist/lib (the shim) it runs through a server. One line
 * per round: wall time per launch for the calls alone and with the synchronize, and CPU time per
 * launch of the calling thread and of the whole process. XPU_LOOP_READY=ms pauses after one
 * warm-up launch (to pin threads); XPU_LOOP_PAUSE=ms pauses before exit (to read /proc). */
#include "xpu_test.h"
#include <time.h>
#include <unistd.h>

static double seconds(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static const char *ptx =
    ".version 7.0\n.target sm_70\n.address_size 64\n"
    ".visible .entry empty() { ret; }\n"
    ".visible .entry three(.param .u64 a, .param .u64 b, .param .u64 c) { ret; }\n";

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    int three = argc > 2;
    CUcontext context;
    xpu_setup_primary(&context);
    CUmodule module;
    CUfunction function;
    CHECK(cuModuleLoadData(&module, ptx));
    CHECK(cuModuleGetFunction(&function, module, three ? "three" : "empty"));
    CUdeviceptr buffer;
    CHECK(cuMemAlloc(&buffer, 64));
    void *arguments[] = {&buffer, &buffer, &buffer};
    void **params = three ? arguments : NULL;
    if (getenv("XPU_LOOP_READY")) {
        CHECK(cuLaunchKernel(function, 1, 1, 1, 1, 1, 1, 0, 0, params, NULL));
        CHECK(cuCtxSynchronize());
        printf("ready\n");
        fflush(stdout);
        usleep(atoi(getenv("XPU_LOOP_READY")) * 1000);
    }
    for (int round = 0; round < 7; round++) {
        double w0 = seconds(CLOCK_MONOTONIC), t0 = seconds(CLOCK_THREAD_CPUTIME_ID), p0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
        for (int i = 0; i < n; i++) CHECK(cuLaunchKernel(function, 1, 1, 1, 1, 1, 1, 0, 0, params, NULL));
        double w1 = seconds(CLOCK_MONOTONIC), t1 = seconds(CLOCK_THREAD_CPUTIME_ID);
        CHECK(cuCtxSynchronize());
        double w2 = seconds(CLOCK_MONOTONIC), p2 = seconds(CLOCK_PROCESS_CPUTIME_ID);
        printf("calls %.3f us/launch, with sync %.3f, caller cpu %.3f, process cpu %.3f\n", (w1 - w0) / n * 1e6,
               (w2 - w0) / n * 1e6, (t1 - t0) / n * 1e6, (p2 - p0) / n * 1e6);
    }
    if (getenv("XPU_LOOP_PAUSE")) {
        printf("done\n");
        fflush(stdout);
        usleep(atoi(getenv("XPU_LOOP_PAUSE")) * 1000);
    }
    return 0;
}
