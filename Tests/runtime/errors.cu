// Errors the runtime reports: a launch with more threads than a block may have, an out-of-range
// device; neither is sticky, and the program goes on after each.
#include "check.h"

__global__ void noop(int *p) { if (p) *p = 1; }

int main() {
    noop<<<1, 4096>>>(nullptr);
    cudaError_t launch = cudaGetLastError();
    printf("4096 threads: %s\n", cudaGetErrorName(launch));
    printf("cleared: %s\n", cudaGetErrorName(cudaGetLastError()));
    printf("device 99: %s\n", cudaGetErrorName(cudaSetDevice(99)));
    int *p;
    CHECK(cudaMalloc(&p, sizeof(int)));
    noop<<<1, 1>>>(p);
    CHECK(cudaDeviceSynchronize());
    int v = 0;
    CHECK(cudaMemcpy(&v, p, sizeof v, cudaMemcpyDeviceToHost));
    printf("after the errors: %d\n", v);
    CHECK(cudaFree(p));
    bool ok = launch != cudaSuccess && v == 1;
    printf(ok ? "PASS\n" : "FAIL\n");
    return ok ? 0 : 1;
}
