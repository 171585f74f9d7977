/* For the network-fault tests: holds a session across a fault of the network between it and its
 * server. Allocates and fills 1 MiB of device memory, prints "ready", waits for GO_FILE to exist,
 * then reads the memory back and prints the copy's status, whether the data is intact, and the
 * status of one more call. Exits 0 in every case: the test reads the lines.
 * Usage: network_fault GO_FILE */
#include "xpu_test.h"

#include <unistd.h>

#define N (1 << 20)

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s GO_FILE\n", argv[0]);
        return 2;
    }
    CUcontext ctx;
    xpu_setup_primary(&ctx);
    CUdeviceptr d;
    unsigned char *pattern = malloc(N), *back = malloc(N);
    xpu_fill(pattern, N, 19);
    CHECK(cuMemAlloc(&d, N));
    CHECK(cuMemcpyHtoD(d, pattern, N));
    printf("ready\n");
    fflush(stdout);
    while (access(argv[1], F_OK) != 0) usleep(10000);

    memset(back, 0, N);
    CUresult copied = cuMemcpyDtoH(back, d, N);
    printf("copy after the fault: %s\n", xpu_result_name(copied));
    printf("data intact: %s\n", copied == CUDA_SUCCESS && memcmp(back, pattern, N) == 0 ? "yes" : "no");
    printf("next call: %s\n", xpu_result_name(cuMemsetD8(d, 0x5a, N)));
    fflush(stdout);
    return 0;
}
