/* For the kill test: holds ARGV[1] MiB of device memory, says "ready", then copies forever.
 * The test kills it with SIGKILL mid-copy and checks that the server frees what it held. */
#include "xpu_test.h"

int main(int argc, char **argv) {
    if (argc != 2 || atoi(argv[1]) <= 0) {
        fprintf(stderr, "usage: %s MiB\n", argv[0]);
        return 2;
    }
    size_t bytes = (size_t)atoi(argv[1]) << 20;
    const size_t chunk = (size_t)4 << 20;

    CUcontext ctx;
    xpu_setup_primary(&ctx);
    CUdeviceptr d = 0;
    CHECK(cuMemAlloc(&d, bytes));
    unsigned char *h = malloc(chunk);
    xpu_fill(h, chunk, 5);
    for (size_t off = 0; off < bytes; off += chunk)
        CHECK(cuMemcpyHtoD(d + off, h, bytes - off < chunk ? bytes - off : chunk));
    printf("ready\n");
    fflush(stdout);

    for (size_t off = 0;; off = (off + chunk) % bytes) {
        size_t n = bytes - off < chunk ? bytes - off : chunk;
        CHECK(cuMemcpyHtoD(d + off, h, n));
        CHECK(cuMemcpyDtoH(h, d + off, n));
    }
}
