/* A tenant that works while its neighbours fault, intrude or die: rounds of copy in, kernel,
 * device-to-device copy, memset and copy back on its own stream, each checked word for word,
 * until the file ARGV[1] exists. Prints "ready" after the first round, "rounds N correct" at
 * the end, and stops at the first wrong word or failed call. */
#include "tenant.h"
#include <unistd.h>

#define WORDS 16384

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s STOP_FILE\n", argv[0]);
        return 2;
    }
    const size_t bytes = WORDS * sizeof(unsigned);
    CUcontext ctx;
    CUdevice dev = xpu_setup_primary(&ctx);
    tenant_kernels k = tenant_load();
    CUstream stream;
    CHECK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
    CUdeviceptr data, copy;
    CHECK(cuMemAlloc(&data, bytes));
    CHECK(cuMemAlloc(&copy, bytes));
    unsigned *pattern = malloc(bytes), *back = malloc(bytes), *cleared = malloc(bytes);
    int rounds = 0;
    do {
        xpu_fill((unsigned char *)pattern, bytes, (unsigned)rounds + 1);
        CHECK(cuMemcpyHtoDAsync(data, pattern, bytes, stream));
        CHECK(tenant_add_to(&k, data, WORDS, (unsigned)rounds + 1, stream));
        CHECK(cuMemcpyDtoDAsync(copy, data, bytes, stream));
        CHECK(cuMemsetD32Async(data, 0, WORDS, stream));
        CHECK(cuStreamSynchronize(stream));
        CHECK(cuMemcpyDtoH(back, copy, bytes));
        CHECK(cuMemcpyDtoH(cleared, data, bytes));
        for (int i = 0; i < WORDS; i++) {
            if (back[i] != pattern[i] + (unsigned)rounds + 1 || cleared[i] != 0) {
                printf("FAIL round %d word %d: %u (expected %u), cleared %u\n", rounds, i, back[i],
                       pattern[i] + (unsigned)rounds + 1, cleared[i]);
                return 1;
            }
        }
        if (rounds++ == 0) {
            printf("ready\n");
            fflush(stdout);
        }
    } while (access(argv[1], F_OK) != 0);
    CHECK(cuCtxSynchronize());
    printf("rounds %d correct\n", rounds);
    CHECK(cuMemFree(data));
    CHECK(cuMemFree(copy));
    CHECK(cuStreamDestroy(stream));
    CHECK(cuModuleUnload(k.module));
    xpu_teardown_primary(dev);
    return 0;
}
