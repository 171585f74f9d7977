/* Threads: each thread has its own current context (CUDA keeps one stack per thread), and
 * threads that share a driver connection work at the same time without mixing their data. */
#include "xpu_test.h"
#include <pthread.h>

#define WORKERS 4
#define BYTES (3u << 20)

struct worker {
    int index;
    CUdevice device;
    unsigned hash_in, hash_out;
    int own_context_current;
    int failed;
};

static void *work(void *argument) {
    struct worker *w = argument;
    CUcontext ctx = NULL, current = NULL;
    if (cuCtxCreate(&ctx, NULL, 0, w->device) != CUDA_SUCCESS) { w->failed = 1; return NULL; }
    unsigned char *in = malloc(BYTES), *out = malloc(BYTES);
    xpu_fill(in, BYTES, 100 + w->index);
    CUdeviceptr d = 0;
    for (int round = 0; round < 5 && !w->failed; round++) {
        w->failed |= cuMemAlloc(&d, BYTES) != CUDA_SUCCESS;
        w->failed |= cuMemcpyHtoD(d, in, BYTES) != CUDA_SUCCESS;
        w->failed |= cuMemcpyDtoH(out, d, BYTES) != CUDA_SUCCESS;
        w->failed |= cuMemFree(d) != CUDA_SUCCESS;
        w->failed |= cuCtxGetCurrent(&current) != CUDA_SUCCESS;
    }
    w->own_context_current = current == ctx;
    w->hash_in = xpu_hash(in, BYTES);
    w->hash_out = xpu_hash(out, BYTES);
    w->failed |= cuCtxDestroy(ctx) != CUDA_SUCCESS;
    free(in);
    free(out);
    return NULL;
}

int main(void) {
    CHECK(cuInit(0));
    CUdevice device;
    CHECK(cuDeviceGet(&device, 0));
    CUcontext main_ctx = NULL, current = NULL;
    CHECK(cuCtxCreate(&main_ctx, NULL, 0, device));

    pthread_t threads[WORKERS];
    struct worker workers[WORKERS] = {0};
    for (int i = 0; i < WORKERS; i++) {
        workers[i] = (struct worker){.index = i, .device = device};
        pthread_create(&threads[i], NULL, work, &workers[i]);
    }
    for (int i = 0; i < WORKERS; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < WORKERS; i++) {
        printf("worker %d: failed=%d own context current=%s data intact=%s\n", i, workers[i].failed,
               workers[i].own_context_current ? "yes" : "no", workers[i].hash_in == workers[i].hash_out ? "yes" : "no");
        if (workers[i].failed || !workers[i].own_context_current || workers[i].hash_in != workers[i].hash_out) xpu_failures++;
    }
    CHECK(cuCtxGetCurrent(&current));
    EXPECT_TRUE("main thread keeps its own context", current == main_ctx);
    CHECK(cuCtxDestroy(main_ctx));
    return xpu_finish();
}
