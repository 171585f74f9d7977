// cudaGetDeviceProperties and single attributes: what a program learns of its device at start-up.
#include "check.h"

int main() {
    int count = 0, driver = 0, runtime = 0;
    CHECK(cudaGetDeviceCount(&count));
    CHECK(cudaDriverGetVersion(&driver));
    CHECK(cudaRuntimeGetVersion(&runtime));
    printf("devices %d, driver %d, runtime %d\n", count, driver, runtime);
    for (int d = 0; d < count; d++) {
        cudaDeviceProp p;
        CHECK(cudaGetDeviceProperties(&p, d));
        printf("device %d: %s, compute capability %d.%d, %d multiprocessors, warp %d\n", d, p.name, p.major, p.minor,
               p.multiProcessorCount, p.warpSize);
        printf("  memory %zu MiB, shared per block %zu, max threads per block %d, grid %d x %d x %d\n",
               p.totalGlobalMem >> 20, p.sharedMemPerBlock, p.maxThreadsPerBlock, p.maxGridSize[0], p.maxGridSize[1],
               p.maxGridSize[2]);
        printf("  managed memory %d, concurrent kernels %d, unified addressing %d, async engines %d\n", p.managedMemory,
               p.concurrentKernels, p.unifiedAddressing, p.asyncEngineCount);
        int value = 0;
        CHECK(cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlockOptin, d));
        printf("  opt-in shared memory per block %d\n", value);
        CHECK(cudaSetDevice(d));
        size_t free = 0, total = 0;
        CHECK(cudaMemGetInfo(&free, &total));
        printf("  total memory as cudaMemGetInfo sees it %zu MiB\n", total >> 20);
    }
    printf(count > 0 ? "PASS\n" : "FAIL\n");
    return count > 0 ? 0 : 1;
}
