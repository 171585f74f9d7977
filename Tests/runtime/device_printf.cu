// Device-side printf: kernels print through vprintf into the context's FIFO, and the output
// appears at the next synchronizing call (here cudaDeviceSynchronize, a blocking cudaMemcpy and
// cudaStreamSynchronize), after what the host printed before that call. One block per kernel, so
// the lines come in thread order on the simulated device.
#include "check.h"

__global__ void hello(int n, float x, long long big, unsigned mask) {
    printf("thread %d of %d: x=%.3f big=%lld hex=%#x str=%s char=%c\n", threadIdx.x, n, x * threadIdx.x, big, mask,
           "device", 'A' + threadIdx.x);
}

__global__ void widths(double d, int *out) {
    out[threadIdx.x] = threadIdx.x;
    if (threadIdx.x == 0) printf("[%8.3f] [%-6d] [%06u] [%e] [%g] [%5s] [%-4c] [%lu] [%%]\n", d, -7, 42u, d, d, "ab", 'q',
                                 18446744073709551615ul);
}

__global__ void plain() { printf("no arguments\n"); }

int main() {
    size_t fifo = 0;
    CHECK(cudaDeviceGetLimit(&fifo, cudaLimitPrintfFifoSize));
    CHECK(cudaDeviceSetLimit(cudaLimitPrintfFifoSize, 4 << 20));
    size_t set = 0;
    CHECK(cudaDeviceGetLimit(&set, cudaLimitPrintfFifoSize));
    printf("printf FIFO %zu bytes, set to %zu\n", fifo, set);

    hello<<<1, 4>>>(4, 1.5f, 1LL << 40, 255u);
    CHECK(cudaGetLastError());
    printf("host: before cudaDeviceSynchronize\n");
    CHECK(cudaDeviceSynchronize());
    printf("host: after cudaDeviceSynchronize\n");

    int *out;
    CHECK(cudaMalloc(&out, 32 * sizeof(int)));
    widths<<<1, 32>>>(-3.14159265, out);
    printf("host: before a blocking copy\n");
    int host[32];
    CHECK(cudaMemcpy(host, out, sizeof host, cudaMemcpyDeviceToHost));
    printf("host: after a blocking copy\n");

    cudaStream_t stream;
    CHECK(cudaStreamCreate(&stream));
    plain<<<1, 2, 0, stream>>>();
    printf("host: before cudaStreamSynchronize\n");
    CHECK(cudaStreamSynchronize(stream));
    printf("host: after cudaStreamSynchronize\n");
    CHECK(cudaStreamDestroy(stream));
    CHECK(cudaFree(out));

    int wrong = 0;
    for (int i = 0; i < 32; i++) wrong += host[i] != i;
    bool ok = fifo == (1 << 20) && set == (4 << 20) && wrong == 0;
    printf(ok ? "PASS\n" : "FAIL\n");
    return ok ? 0 : 1;
}
