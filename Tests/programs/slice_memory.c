/* Run with XPU_SLICE=mem=<ARGV[1]>MiB: the slice's quota is what the program sees and gets.
 * cuMemGetInfo and cuDeviceTotalMem report the quota, allocations beyond it fail with
 * CUDA_ERROR_OUT_OF_MEMORY, and freeing makes room again. */
#include "xpu_test.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s QUOTA_MiB\n", argv[0]);
        return 2;
    }
    size_t quota = (size_t)atoi(argv[1]) << 20;
    CUcontext ctx;
    CUdevice device = xpu_setup_primary(&ctx);
    size_t free_bytes = 0, total = 0, device_total = 0;
    CHECK(cuMemGetInfo(&free_bytes, &total));
    CHECK(cuDeviceTotalMem(&device_total, device));
    EXPECT_TRUE("cuMemGetInfo total is the quota", total == quota);
    EXPECT_TRUE("cuMemGetInfo free is the quota before any allocation", free_bytes == quota);
    EXPECT_TRUE("cuDeviceTotalMem is the quota", device_total == quota);

    CUdeviceptr big, more, again;
    CHECK(cuMemAlloc(&big, quota - (16u << 20)));
    CHECK(cuMemGetInfo(&free_bytes, &total));
    EXPECT_TRUE("free after an allocation is quota - used", free_bytes == (16u << 20));
    EXPECT("an allocation beyond the quota", cuMemAlloc(&more, 32u << 20), CUDA_ERROR_OUT_OF_MEMORY);
    CHECK(cuMemAlloc(&more, 8u << 20));
    CHECK(cuMemFree(big));
    CHECK(cuMemAlloc(&again, 32u << 20));
    CHECK(cuMemGetInfo(&free_bytes, &total));
    EXPECT_TRUE("free after freeing is back", free_bytes == quota - (40u << 20));
    CHECK(cuMemFree(more));
    CHECK(cuMemFree(again));
    return xpu_finish();
}
