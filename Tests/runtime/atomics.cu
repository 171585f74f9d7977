// Global and shared-memory atomics: a histogram, a maximum, a compare-and-swap counter.
#include "check.h"

__global__ void histogram(const unsigned *values, int n, unsigned *bins, int *maximum, unsigned *claims) {
    __shared__ unsigned local[16];
    if (threadIdx.x < 16) local[threadIdx.x] = 0;
    __syncthreads();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        atomicAdd(&local[values[i] % 16], 1u);
        atomicMax(maximum, (int)values[i]);
    }
    __syncthreads();
    if (threadIdx.x < 16) atomicAdd(&bins[threadIdx.x], local[threadIdx.x]);
    if (threadIdx.x == 0) {
        unsigned seen = *claims, previous;
        do {
            previous = seen;
            seen = atomicCAS(claims, previous, previous + 1);
        } while (seen != previous);
    }
}

int main() {
    const int n = 5000;
    unsigned *values = new unsigned[n];
    for (int i = 0; i < n; i++) values[i] = (i * 2654435761u) % 1000;
    unsigned *dvalues, *dbins, *dclaims;
    int *dmaximum;
    CHECK(cudaMalloc(&dvalues, n * sizeof(unsigned)));
    CHECK(cudaMalloc(&dbins, 16 * sizeof(unsigned)));
    CHECK(cudaMalloc(&dmaximum, sizeof(int)));
    CHECK(cudaMalloc(&dclaims, sizeof(unsigned)));
    CHECK(cudaMemcpy(dvalues, values, n * sizeof(unsigned), cudaMemcpyHostToDevice));
    CHECK(cudaMemset(dbins, 0, 16 * sizeof(unsigned)));
    CHECK(cudaMemset(dmaximum, 0, sizeof(int)));
    CHECK(cudaMemset(dclaims, 0, sizeof(unsigned)));
    histogram<<<8, 128>>>(dvalues, n, dbins, dmaximum, dclaims);
    CHECK(cudaGetLastError());
    unsigned bins[16], claims;
    int maximum;
    CHECK(cudaMemcpy(bins, dbins, sizeof bins, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(&maximum, dmaximum, sizeof maximum, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(&claims, dclaims, sizeof claims, cudaMemcpyDeviceToHost));
    unsigned expected[16] = {0};
    int expectedMaximum = 0;
    for (int i = 0; i < n; i++) { expected[values[i] % 16]++; expectedMaximum = values[i] > (unsigned)expectedMaximum ? values[i] : expectedMaximum; }
    int wrong = 0;
    for (int b = 0; b < 16; b++) { printf("bin %2d: %u\n", b, bins[b]); wrong += bins[b] != expected[b]; }
    printf("maximum %d, claims %u\n", maximum, claims);
    wrong += maximum != expectedMaximum || claims != 8;
    printf(wrong == 0 ? "PASS\n" : "FAIL\n");
    return wrong == 0 ? 0 : 1;
}
