// A sum reduction: shared-memory tree per block, warp shuffles for the last 32, then a second pass.
#include "check.h"

__inline__ __device__ int warp_sum(int v) {
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffff, v, offset);
    return v;
}

__global__ void reduce(const int *in, int n, int *out) {
    __shared__ int partial[256];
    int i = blockIdx.x * blockDim.x * 2 + threadIdx.x;
    int v = 0;
    if (i < n) v += in[i];
    if (i + blockDim.x < n) v += in[i + blockDim.x];
    partial[threadIdx.x] = v;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride >= 32; stride /= 2) {
        if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x < 32) {
        int w = warp_sum(partial[threadIdx.x]);
        if (threadIdx.x == 0) out[blockIdx.x] = w;
    }
}

int main() {
    const int n = 100000, threads = 256;
    int *in = new int[n];
    long long expected = 0;
    for (int i = 0; i < n; i++) { in[i] = (i * 37) % 101 - 50; expected += in[i]; }
    int blocks = (n + threads * 2 - 1) / (threads * 2);
    int *din, *dpartial, *dtotal;
    CHECK(cudaMalloc(&din, n * sizeof(int)));
    CHECK(cudaMalloc(&dpartial, blocks * sizeof(int)));
    CHECK(cudaMalloc(&dtotal, sizeof(int)));
    CHECK(cudaMemcpy(din, in, n * sizeof(int), cudaMemcpyHostToDevice));
    reduce<<<blocks, threads>>>(din, n, dpartial);
    reduce<<<1, threads>>>(dpartial, blocks, dtotal);
    CHECK(cudaGetLastError());
    int total;
    CHECK(cudaMemcpy(&total, dtotal, sizeof total, cudaMemcpyDeviceToHost));
    printf("%d blocks, sum %d (expected %lld)\n", blocks, total, expected);
    printf(total == expected ? "PASS\n" : "FAIL\n");
    return total == expected ? 0 : 1;
}
