/* For the kill test: prints free and total device memory as numbers. */
#include "xpu_test.h"

int main(void) {
    CUcontext ctx;
    CUdevice dev = xpu_setup_primary(&ctx);
    size_t freeBytes = 0, totalBytes = 0;
    CHECK(cuMemGetInfo(&freeBytes, &totalBytes));
    printf("free %zu\ntotal %zu\n", freeBytes, totalBytes);
    xpu_teardown_primary(dev);
    return 0;
}
