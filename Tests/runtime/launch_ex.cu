// cudaLaunchKernelEx with attributes that are hints (priority), and one a simulated device refuses
// (a cooperative launch), which must fail cleanly and leave the program working.
#include "check.h"

__global__ void axpb(float a, const float *x, float b, float *y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + b;
}

int main() {
    const int n = 2000;
    float x[n], y[n];
    for (int i = 0; i < n; i++) x[i] = i;
    float *dx, *dy;
    CHECK(cudaMalloc(&dx, sizeof x));
    CHECK(cudaMalloc(&dy, sizeof y));
    CHECK(cudaMemcpy(dx, x, sizeof x, cudaMemcpyHostToDevice));
    cudaLaunchAttribute attributes[1];
    attributes[0].id = cudaLaunchAttributePriority;
    attributes[0].val.priority = 0;
    cudaLaunchConfig_t config = {};
    config.gridDim = dim3((n + 127) / 128);
    config.blockDim = dim3(128);
    config.attrs = attributes;
    config.numAttrs = 1;
    CHECK(cudaLaunchKernelEx(&config, axpb, 2.0f, (const float *)dx, 1.0f, dy, n));
    CHECK(cudaMemcpy(y, dy, sizeof y, cudaMemcpyDeviceToHost));
    int wrong = 0;
    for (int i = 0; i < n; i++) wrong += y[i] != 2.0f * i + 1.0f;
    attributes[0].id = cudaLaunchAttributeCooperative;
    attributes[0].val.cooperative = 1;
    cudaError_t cooperative = cudaLaunchKernelEx(&config, axpb, 2.0f, (const float *)dx, 1.0f, dy, n);
    printf("cooperative launch: %s\n", cooperative == cudaSuccess ? "ran" : "refused");
    cudaGetLastError();
    CHECK(cudaDeviceSynchronize());
    printf("y[1999] %.1f, %d wrong\n", y[n - 1], wrong);
    printf(wrong == 0 ? "PASS\n" : "FAIL\n");
    return wrong == 0 ? 0 : 1;
}
