/* A tenant that keeps the device busy with identical kernels during a common time window, for the
 * compute-share tests: ARGV = start (CLOCK_REALTIME, ms since the epoch), window (ms), loop
 * iterations per kernel, kernels per batch (launched back to back, then one synchronize: a batch
 * above 1 keeps the tenant's queue on the server full, so it saturates the device), and optionally
 * `stream` to launch into a stream of its own instead of the NULL stream. Prints how
 * many kernels completed inside the window and the mean latency of a batch. */
#include "xpu_test.h"
#include <time.h>
#include <unistd.h>

static const char *ptx =
    ".version 7.0\n.target sm_70\n.address_size 64\n"
    ".visible .entry spin(.param .u64 out, .param .u32 n) {\n"
    "  .reg .pred %p; .reg .b32 %r<4>; .reg .b64 %rd<3>;\n"
    "  ld.param.u64 %rd1, [out]; ld.param.u32 %r1, [n];\n"
    "  mov.u32 %r2, 0; mov.u32 %r3, 1;\n"
    "LOOP:\n"
    "  setp.ge.u32 %p, %r2, %r1; @%p bra DONE;\n"
    "  mad.lo.u32 %r3, %r3, 1664525, 1013904223;\n"
    "  add.u32 %r2, %r2, 1;\n"
    "  bra LOOP;\n"
    "DONE:\n"
    "  cvta.to.global.u64 %rd2, %rd1; st.global.u32 [%rd2], %r3; ret;\n"
    "}\n";

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc != 5 && !(argc == 6 && strcmp(argv[5], "stream") == 0)) {
        fprintf(stderr, "usage: %s START_MS WINDOW_MS ITERATIONS BATCH [stream]\n", argv[0]);
        return 2;
    }
    double start = atof(argv[1]), end = start + atof(argv[2]);
    unsigned n = (unsigned)atoi(argv[3]);
    int batch = atoi(argv[4]);
    CUcontext ctx;
    xpu_setup_primary(&ctx);
    CUmodule module;
    CUfunction spin;
    CHECK(cuModuleLoadData(&module, ptx));
    CHECK(cuModuleGetFunction(&spin, module, "spin"));
    CUdeviceptr out;
    CHECK(cuMemAlloc(&out, 4));
    void *args[] = {&out, &n};
    CUstream stream = NULL;
    if (argc == 6) CHECK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
    /* Warm up once, then wait for the common start. */
    CHECK(cuLaunchKernel(spin, 1, 1, 1, 1, 1, 1, 0, stream, args, NULL));
    CHECK(cuCtxSynchronize());
    while (now_ms() < start) usleep(1000);
    long completed = 0, batches = 0;
    double latency = 0;
    if (batch == 1) {
        /* Latency: one kernel at a time, launch to completion. */
        while (now_ms() < end) {
            double launched = now_ms();
            CHECK(cuLaunchKernel(spin, 1, 1, 1, 1, 1, 1, 0, stream, args, NULL));
            CHECK(cuCtxSynchronize());
            double done = now_ms();
            if (done <= end) {
                completed++;
                batches++;
                latency += done - launched;
            }
        }
    } else {
        /* Saturation: the next batch is queued before waiting for the previous one (an event per
         * batch), so this tenant always has work waiting on the server. */
        CUevent events[2];
        CHECK(cuEventCreate(&events[0], CU_EVENT_DISABLE_TIMING));
        CHECK(cuEventCreate(&events[1], CU_EVENT_DISABLE_TIMING));
        for (long k = 0;; k++) {
            for (int i = 0; i < batch; i++) CHECK(cuLaunchKernel(spin, 1, 1, 1, 1, 1, 1, 0, stream, args, NULL));
            CHECK(cuEventRecord(events[k % 2], stream));
            if (k == 0) continue;
            CHECK(cuEventSynchronize(events[(k - 1) % 2]));
            if (now_ms() > end) break;
            completed += batch;
            batches++;
        }
        CHECK(cuCtxSynchronize());
    }
    printf("kernels %ld\n", completed);
    printf("mean latency us %.0f\n", batches ? latency * 1e3 / batches : 0.0);
    return 0;
}
