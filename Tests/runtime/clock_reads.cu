// clock() and clock64() inside a kernel: each thread's counter never runs backwards.
#include "check.h"

__global__ void timed(long long *spans, int *backwards, float *sink) {
    long long start = clock64();
    unsigned start32 = (unsigned)clock();
    float x = threadIdx.x;
    for (int i = 0; i < 100; i++) x = x * 0.999f + 1.0f;
    sink[threadIdx.x] = x;
    long long end = clock64();
    unsigned end32 = (unsigned)clock();
    spans[threadIdx.x] = end - start;
    if (end < start) atomicAdd(backwards, 1);
    (void)start32, (void)end32;
}

int main() {
    long long *spans;
    int *backwards;
    float *sink;
    CHECK(cudaMalloc(&spans, 64 * sizeof(long long)));
    CHECK(cudaMalloc(&backwards, sizeof(int)));
    CHECK(cudaMalloc(&sink, 64 * sizeof(float)));
    CHECK(cudaMemset(backwards, 0, sizeof(int)));
    timed<<<1, 64>>>(spans, backwards, sink);
    CHECK(cudaDeviceSynchronize());
    long long host[64];
    int back;
    CHECK(cudaMemcpy(host, spans, sizeof host, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(&back, backwards, sizeof back, cudaMemcpyDeviceToHost));
    int negative = 0;
    for (int i = 0; i < 64; i++) negative += host[i] < 0;
    printf("clock went backwards in %d threads, %d negative spans\n", back, negative);
    printf(back == 0 && negative == 0 ? "PASS\n" : "FAIL\n");
    return back == 0 && negative == 0 ? 0 : 1;
}
