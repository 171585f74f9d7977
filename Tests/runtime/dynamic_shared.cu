// Dynamic shared memory sized at launch: each block reverses its slice.
#include "check.h"

__global__ void reverse(const int *in, int *out, int n) {
    extern __shared__ int slice[];
    int base = blockIdx.x * blockDim.x, t = threadIdx.x;
    if (base + t < n) slice[t] = in[base + t];
    __syncthreads();
    int count = min((int)blockDim.x, n - base);
    if (t < count) out[base + t] = slice[count - 1 - t];
}

int main() {
    const int n = 1000, threads = 96;
    int in[n], out[n];
    for (int i = 0; i < n; i++) in[i] = i * 3;
    int *din, *dout;
    CHECK(cudaMalloc(&din, sizeof in));
    CHECK(cudaMalloc(&dout, sizeof out));
    CHECK(cudaMemcpy(din, in, sizeof in, cudaMemcpyHostToDevice));
    reverse<<<(n + threads - 1) / threads, threads, threads * sizeof(int)>>>(din, dout, n);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(out, dout, sizeof out, cudaMemcpyDeviceToHost));
    int wrong = 0;
    for (int b = 0; b * threads < n; b++) {
        int count = n - b * threads < threads ? n - b * threads : threads;
        for (int t = 0; t < count; t++) wrong += out[b * threads + t] != in[b * threads + count - 1 - t];
    }
    printf("out[0] %d, out[999] %d, %d wrong\n", out[0], out[n - 1], wrong);
    printf(wrong == 0 ? "PASS\n" : "FAIL\n");
    return wrong == 0 ? 0 : 1;
}
