/* Two devices on two servers; the test kills the first server while this program waits, then
 * checks that calls routed to the lost server fail with CUDA_ERROR_DEVICE_UNAVAILABLE while the
 * other server's device keeps working.
 * Usage: server_loss GO_FILE   (prints "ready", waits for GO_FILE to exist, then goes on) */
#include "xpu_test.h"

#include <unistd.h>

#define N 4096

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s GO_FILE\n", argv[0]);
        return 2;
    }
    CHECK(cuInit(0));
    int count = 0;
    CHECK(cuDeviceGetCount(&count));
    EXPECT_TRUE("two devices", count == 2);
    CUcontext ctx[2];
    CUdeviceptr d[2];
    unsigned char *pattern = malloc(N), *back = malloc(N);
    xpu_fill(pattern, N, 4);
    for (int i = 0; i < 2; i++) {
        CUdevice dev;
        CHECK(cuDeviceGet(&dev, i));
        CHECK(cuCtxCreate(&ctx[i], NULL, 0, dev));
        CHECK(cuMemAlloc(&d[i], N));
        CHECK(cuMemcpyHtoD(d[i], pattern, N));
    }
    printf("ready\n");
    fflush(stdout);
    while (access(argv[1], F_OK) != 0) usleep(10000);

    /* Device 0's server is gone: what is routed there fails, and keeps failing. */
    CHECK(cuCtxSetCurrent(ctx[0]));
    printf("copy to the lost server: %s\n", xpu_result_name(cuMemcpyDtoH(back, d[0], N)));
    printf("synchronize on the lost server: %s\n", xpu_result_name(cuCtxSynchronize()));
    /* Device 1's server still serves, data intact. */
    CHECK(cuCtxSetCurrent(ctx[1]));
    memset(back, 0, N);
    CHECK(cuMemcpyDtoH(back, d[1], N));
    EXPECT_TRUE("the other server's data", memcmp(back, pattern, N) == 0);
    CUdeviceptr more;
    CHECK(cuMemAlloc(&more, N));
    CHECK(cuMemsetD8(more, 0x11, N));
    CHECK(cuMemcpyDtoH(back, more, N));
    EXPECT_TRUE("the other server still allocates and sets", back[0] == 0x11 && back[N - 1] == 0x11);
    CHECK(cuCtxDestroy(ctx[1]));
    return xpu_finish();
}
