// __constant__ and __device__ variables written and read with cudaMemcpyToSymbol/FromSymbol.
#include "check.h"

__constant__ float coefficients[4];
__device__ int counter;
__device__ float table[8] = {1, 2, 3, 4, 5, 6, 7, 8};

__global__ void polynomial(const float *x, float *y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float v = x[i];
        y[i] = ((coefficients[3] * v + coefficients[2]) * v + coefficients[1]) * v + coefficients[0] + table[i % 8];
        atomicAdd(&counter, 1);
    }
}

int main() {
    const int n = 100;
    float coefficients_host[4] = {1.0f, -2.0f, 0.5f, 0.25f}, x[n], y[n];
    for (int i = 0; i < n; i++) x[i] = i * 0.1f;
    CHECK(cudaMemcpyToSymbol(coefficients, coefficients_host, sizeof coefficients_host));
    int zero = 0;
    CHECK(cudaMemcpyToSymbol(counter, &zero, sizeof zero));
    float *dx, *dy;
    CHECK(cudaMalloc(&dx, sizeof x));
    CHECK(cudaMalloc(&dy, sizeof y));
    CHECK(cudaMemcpy(dx, x, sizeof x, cudaMemcpyHostToDevice));
    polynomial<<<2, 64>>>(dx, dy, n);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(y, dy, sizeof y, cudaMemcpyDeviceToHost));
    int count;
    CHECK(cudaMemcpyFromSymbol(&count, counter, sizeof count));
    float table_host[8];
    CHECK(cudaMemcpyFromSymbol(table_host, table, sizeof table_host));
    int wrong = count != n;
    for (int i = 0; i < n; i++) {
        float v = x[i];
        float expected = ((0.25f * v + 0.5f) * v - 2.0f) * v + 1.0f + (float)(i % 8 + 1);
        float diff = y[i] - expected;
        wrong += diff > 1e-4f || diff < -1e-4f;
    }
    printf("counter %d, table[7] %.0f, y[10] %.4f, %d wrong\n", count, table_host[7], y[10], wrong);
    printf(wrong == 0 ? "PASS\n" : "FAIL\n");
    return wrong == 0 ? 0 : 1;
}
