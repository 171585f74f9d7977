/* Tenant A of the isolation test: allocates and fills memory, loads a module, creates a stream
 * and an event, and publishes every handle and pointer ("publish NAME 0xVALUE"). Then it waits
 * until the file ARGV[1] exists (the other tenant has tried its worst) and checks that its data
 * is unchanged and every object still works. */
#include "tenant.h"
#include <unistd.h>

#define WORDS 16384 /* 64 KiB */

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s GO_FILE\n", argv[0]);
        return 2;
    }
    const size_t bytes = WORDS * sizeof(unsigned);
    CUcontext ctx;
    CUdevice dev = xpu_setup_primary(&ctx);
    tenant_kernels k = tenant_load();
    CUdeviceptr global;
    size_t globalBytes;
    CHECK(cuModuleGetGlobal(&global, &globalBytes, k.module, "tenant_counter"));
    unsigned seven = 7;
    CHECK(cuMemcpyHtoD(global, &seven, sizeof seven));

    unsigned *pattern = malloc(bytes), *back = malloc(bytes);
    xpu_fill((unsigned char *)pattern, bytes, 11);
    /* A freed range with live memory after it: the allocator may give its start to the other
     * tenant (first fit), so the range published is the middle of it. */
    CUdeviceptr data, freed;
    CHECK(cuMemAlloc(&freed, 1 << 20));
    CHECK(cuMemAlloc(&data, bytes));
    CHECK(cuMemcpyHtoD(data, pattern, bytes));
    CHECK(cuMemFree(freed));
    CUstream stream;
    CUevent event;
    CHECK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
    CHECK(cuEventCreate(&event, 0));
    CHECK(cuEventRecord(event, stream));
    CHECK(cuCtxSynchronize());

    tenant_publish("context", (unsigned long long)(uintptr_t)ctx);
    tenant_publish("module", (unsigned long long)(uintptr_t)k.module);
    tenant_publish("function", (unsigned long long)(uintptr_t)k.poke);
    tenant_publish("stream", (unsigned long long)(uintptr_t)stream);
    tenant_publish("event", (unsigned long long)(uintptr_t)event);
    tenant_publish("data", (unsigned long long)data);
    tenant_publish("freed", (unsigned long long)freed + (512 << 10));
    tenant_publish("global", (unsigned long long)global);
    printf("ready\n");
    fflush(stdout);
    while (access(argv[1], F_OK) != 0) usleep(10000);

    CHECK(cuMemcpyDtoH(back, data, bytes));
    EXPECT_TRUE("data unchanged", memcmp(back, pattern, bytes) == 0);
    unsigned counter = 0;
    CHECK(cuMemcpyDtoH(&counter, global, sizeof counter));
    EXPECT_TRUE("module variable unchanged", counter == 7);

    /* Every object still works: a kernel on the stream, the event after it. */
    EXPECT("kernel on own stream", tenant_add_to(&k, data, WORDS, 1, stream), CUDA_SUCCESS);
    EXPECT("event record", cuEventRecord(event, stream), CUDA_SUCCESS);
    EXPECT("event synchronize", cuEventSynchronize(event), CUDA_SUCCESS);
    EXPECT("stream query", cuStreamQuery(stream), CUDA_SUCCESS);
    CHECK(cuMemcpyDtoH(back, data, bytes));
    int added = 1;
    for (int i = 0; i < WORDS; i++) added &= back[i] == pattern[i] + 1;
    EXPECT_TRUE("kernel result", added);
    EXPECT("context synchronize", cuCtxSynchronize(), CUDA_SUCCESS);

    CHECK(cuEventDestroy(event));
    CHECK(cuStreamDestroy(stream));
    CHECK(cuMemFree(data));
    CHECK(cuModuleUnload(k.module));
    xpu_teardown_primary(dev);
    return xpu_finish();
}
