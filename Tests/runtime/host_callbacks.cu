// Host work in stream order (cudaLaunchHostFunc, cudaStreamAddCallback), stream priorities,
// occupancy, cache preferences and context limits.
#include "check.h"

__global__ void fill(int *data, int value, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) data[i] = value;
}

struct Step { int *host; const int *device; int n; int seen; };

void after_fill(void *argument) {
    Step *step = (Step *)argument;
    step->seen = step->host[0];  // the copy queued before this function has landed
}

void CUDART_CB callback(cudaStream_t, cudaError_t status, void *argument) {
    Step *step = (Step *)argument;
    step->seen = status == cudaSuccess ? step->host[step->n - 1] : -1;
}

int main() {
    const int n = 4096;
    int *device, *host;
    CHECK(cudaMalloc(&device, n * sizeof(int)));
    CHECK(cudaMallocHost(&host, n * sizeof(int)));
    int least, greatest;
    CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    cudaStream_t stream;
    CHECK(cudaStreamCreateWithPriority(&stream, cudaStreamNonBlocking, greatest));
    printf("priorities %d..%d\n", least, greatest);

    Step step = {host, device, n, 0};
    fill<<<n / 256, 256, 0, stream>>>(device, 7, n);
    CHECK(cudaMemcpyAsync(host, device, n * sizeof(int), cudaMemcpyDeviceToHost, stream));
    CHECK(cudaLaunchHostFunc(stream, after_fill, &step));
    CHECK(cudaStreamSynchronize(stream));
    printf("host function saw %d\n", step.seen);
    int first = step.seen;

    fill<<<n / 256, 256, 0, stream>>>(device, 9, n);
    CHECK(cudaMemcpyAsync(host, device, n * sizeof(int), cudaMemcpyDeviceToHost, stream));
    CHECK(cudaStreamAddCallback(stream, callback, &step, 0));
    CHECK(cudaStreamSynchronize(stream));
    printf("callback saw %d\n", step.seen);

    int blocks = 0;
    CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, fill, 256, 0));
    printf("occupancy at 256 threads: %s\n", blocks > 0 ? "some blocks" : "none");
    CHECK(cudaFuncSetCacheConfig(fill, cudaFuncCachePreferL1));
    size_t stack = 0;
    CHECK(cudaDeviceSetLimit(cudaLimitStackSize, 4096));
    CHECK(cudaDeviceGetLimit(&stack, cudaLimitStackSize));
    printf("stack limit %zu\n", stack);
    char bus[32];
    CHECK(cudaDeviceGetPCIBusId(bus, sizeof bus, 0));
    printf("pci bus id has %zu characters\n", strlen(bus));

    CHECK(cudaStreamDestroy(stream));
    CHECK(cudaFreeHost(host));
    CHECK(cudaFree(device));
    bool ok = first == 7 && step.seen == 9 && blocks > 0 && stack == 4096 && greatest <= least;
    printf(ok ? "PASS\n" : "FAIL\n");
    return ok ? 0 : 1;
}
