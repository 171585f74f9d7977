// Pinned host memory, two streams with asynchronous copies and kernels, events between them.
#include "check.h"

__global__ void scale(float *data, int n, float factor) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) data[i] = data[i] * factor + 1.0f;
}

int main() {
    const int n = 1 << 16, half = n / 2;
    float *host;
    CHECK(cudaMallocHost(&host, n * sizeof(float)));
    for (int i = 0; i < n; i++) host[i] = (float)(i % 1000);
    float *device;
    CHECK(cudaMalloc(&device, n * sizeof(float)));
    cudaStream_t streams[2];
    cudaEvent_t done[2], start, stop;
    for (int s = 0; s < 2; s++) {
        CHECK(cudaStreamCreate(&streams[s]));
        CHECK(cudaEventCreate(&done[s]));
    }
    CHECK(cudaEventCreate(&start));
    CHECK(cudaEventCreate(&stop));
    CHECK(cudaEventRecord(start, streams[0]));
    for (int s = 0; s < 2; s++) {
        float *part = device + s * half;
        CHECK(cudaMemcpyAsync(part, host + s * half, half * sizeof(float), cudaMemcpyHostToDevice, streams[s]));
        scale<<<(half + 255) / 256, 256, 0, streams[s]>>>(part, half, s + 2.0f);
        CHECK(cudaGetLastError());
        CHECK(cudaMemcpyAsync(host + s * half, part, half * sizeof(float), cudaMemcpyDeviceToHost, streams[s]));
        CHECK(cudaEventRecord(done[s], streams[s]));
    }
    CHECK(cudaStreamWaitEvent(streams[0], done[1], 0));
    CHECK(cudaEventRecord(stop, streams[0]));
    CHECK(cudaEventSynchronize(stop));
    float ms = -1;
    CHECK(cudaEventElapsedTime(&ms, start, stop));
    for (int s = 0; s < 2; s++) CHECK(cudaStreamSynchronize(streams[s]));
    int wrong = 0;
    for (int i = 0; i < n; i++) wrong += host[i] != (float)(i % 1000) * (i < half ? 2.0f : 3.0f) + 1.0f;
    printf("elapsed time %s, %d wrong\n", ms >= 0 ? "measured" : "missing", wrong);
    for (int s = 0; s < 2; s++) {
        CHECK(cudaEventQuery(done[s]));
        CHECK(cudaEventDestroy(done[s]));
        CHECK(cudaStreamDestroy(streams[s]));
    }
    CHECK(cudaFreeHost(host));
    CHECK(cudaFree(device));
    printf(wrong == 0 && ms >= 0 ? "PASS\n" : "FAIL\n");
    return wrong == 0 ? 0 : 1;
}
