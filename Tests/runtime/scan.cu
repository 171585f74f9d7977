// An exclusive prefix sum (Blelloch) of one block in shared memory, blocks combined on the host side.
#include "check.h"

#define BLOCK 512

__global__ void scan_block(const int *in, int *out, int *sums, int n) {
    __shared__ int s[BLOCK];
    int base = blockIdx.x * BLOCK, t = threadIdx.x;
    s[2 * t] = base + 2 * t < n ? in[base + 2 * t] : 0;
    s[2 * t + 1] = base + 2 * t + 1 < n ? in[base + 2 * t + 1] : 0;
    int offset = 1;
    for (int d = BLOCK / 2; d > 0; d /= 2) {
        __syncthreads();
        if (t < d) s[offset * (2 * t + 2) - 1] += s[offset * (2 * t + 1) - 1];
        offset *= 2;
    }
    if (t == 0) { sums[blockIdx.x] = s[BLOCK - 1]; s[BLOCK - 1] = 0; }
    for (int d = 1; d < BLOCK; d *= 2) {
        offset /= 2;
        __syncthreads();
        if (t < d) {
            int left = offset * (2 * t + 1) - 1, right = offset * (2 * t + 2) - 1;
            int v = s[left];
            s[left] = s[right];
            s[right] += v;
        }
    }
    __syncthreads();
    if (base + 2 * t < n) out[base + 2 * t] = s[2 * t];
    if (base + 2 * t + 1 < n) out[base + 2 * t + 1] = s[2 * t + 1];
}

__global__ void add_offsets(int *out, const int *offsets, int n) {
    int i = blockIdx.x * BLOCK + threadIdx.x;
    if (i < n) out[i] += offsets[blockIdx.x];
}

int main() {
    const int n = 3000, blocks = (n + BLOCK - 1) / BLOCK;
    int in[n], out[n], sums[blocks], offsets[blocks];
    for (int i = 0; i < n; i++) in[i] = i % 13;
    int *din, *dout, *dsums, *doffsets;
    CHECK(cudaMalloc(&din, sizeof in));
    CHECK(cudaMalloc(&dout, sizeof out));
    CHECK(cudaMalloc(&dsums, sizeof sums));
    CHECK(cudaMalloc(&doffsets, sizeof offsets));
    CHECK(cudaMemcpy(din, in, sizeof in, cudaMemcpyHostToDevice));
    scan_block<<<blocks, BLOCK / 2>>>(din, dout, dsums, n);
    CHECK(cudaMemcpy(sums, dsums, sizeof sums, cudaMemcpyDeviceToHost));
    int running = 0;
    for (int b = 0; b < blocks; b++) { offsets[b] = running; running += sums[b]; }
    CHECK(cudaMemcpy(doffsets, offsets, sizeof offsets, cudaMemcpyHostToDevice));
    add_offsets<<<blocks, BLOCK>>>(dout, doffsets, n);
    CHECK(cudaMemcpy(out, dout, sizeof out, cudaMemcpyDeviceToHost));
    int wrong = 0, expected = 0;
    for (int i = 0; i < n; i++) { wrong += out[i] != expected; expected += in[i]; }
    printf("out[%d] = %d, total %d, %d wrong\n", n - 1, out[n - 1], running, wrong);
    printf(wrong == 0 ? "PASS\n" : "FAIL\n");
    return wrong == 0 ? 0 : 1;
}
