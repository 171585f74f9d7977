/* For the pool test: holds ARGV[1] MiB of device memory, says "ready total BYTES", then proves
 * its session alive every 200 ms ("alive N": a cuMemGetInfo and a small copy) until killed. */
#include <unistd.h>
#include "xpu_test.h"

int main(int argc, char **argv) {
    if (argc != 2 || atoi(argv[1]) <= 0) {
        fprintf(stderr, "usage: %s MiB\n", argv[0]);
        return 2;
    }
    size_t bytes = (size_t)atoi(argv[1]) << 20;
    CUcontext ctx;
    xpu_setup_primary(&ctx);
    CUdeviceptr d = 0;
    CHECK(cuMemAlloc(&d, bytes));
    size_t freeBytes = 0, totalBytes = 0;
    CHECK(cuMemGetInfo(&freeBytes, &totalBytes));
    printf("ready total %zu\n", totalBytes);
    fflush(stdout);
    unsigned char h[64] = {0};
    for (int n = 1;; n++) {
        usleep(200000);
        CHECK(cuMemGetInfo(&freeBytes, &totalBytes));
        CHECK(cuMemcpyHtoD(d, h, sizeof h));
        printf("alive %d\n", n);
        fflush(stdout);
    }
}
