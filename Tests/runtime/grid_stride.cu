// SAXPY with a grid-stride loop over a 2D launch, device-to-device copies and cudaMemset.
#include "check.h"

__global__ void saxpy(float a, const float *x, float *y, int n) {
    int threads = gridDim.x * gridDim.y * blockDim.x;
    int id = (blockIdx.y * gridDim.x + blockIdx.x) * blockDim.x + threadIdx.x;
    for (int i = id; i < n; i += threads) y[i] = a * x[i] + y[i];
}

int main() {
    const int n = 50000;
    float *x = new float[n], *y = new float[n];
    for (int i = 0; i < n; i++) x[i] = (float)(i % 100);
    float *dx, *dy, *dcopy;
    CHECK(cudaMalloc(&dx, n * sizeof(float)));
    CHECK(cudaMalloc(&dy, n * sizeof(float)));
    CHECK(cudaMalloc(&dcopy, n * sizeof(float)));
    CHECK(cudaMemcpy(dx, x, n * sizeof(float), cudaMemcpyHostToDevice));
    CHECK(cudaMemset(dy, 0, n * sizeof(float)));
    saxpy<<<dim3(4, 3), 128>>>(2.0f, dx, dy, n);
    saxpy<<<dim3(2, 2), 64>>>(0.5f, dx, dy, n);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(dcopy, dy, n * sizeof(float), cudaMemcpyDeviceToDevice));
    CHECK(cudaMemcpy(y, dcopy, n * sizeof(float), cudaMemcpyDeviceToHost));
    int wrong = 0;
    double sum = 0;
    for (int i = 0; i < n; i++) { wrong += y[i] != 2.5f * x[i]; sum += y[i]; }
    printf("sum %.1f, %d wrong\n", sum, wrong);
    printf(wrong == 0 ? "PASS\n" : "FAIL\n");
    return wrong == 0 ? 0 : 1;
}
