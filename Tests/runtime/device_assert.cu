// Device-side assert: a launch whose assertions hold runs as usual; one that fails prints CUDA's
// report where printf output goes (at the synchronization), fails with cudaErrorAssert, and the
// error is sticky: later calls in the context fail the same way.
#include <assert.h>
#include "check.h"

__global__ void doubled(const int *in, int *out) {
    int i = threadIdx.x;
    assert(in[i] >= 0);
    out[i] = 2 * in[i];
}

int main() {
    const int n = 4;
    int values[n] = {1, 2, 3, 4}, result[n] = {0};
    int *in, *out;
    CHECK(cudaMalloc(&in, sizeof values));
    CHECK(cudaMalloc(&out, sizeof result));
    CHECK(cudaMemcpy(in, values, sizeof values, cudaMemcpyHostToDevice));
    doubled<<<1, n>>>(in, out);
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaMemcpy(result, out, sizeof result, cudaMemcpyDeviceToHost));
    printf("holds: %d %d %d %d\n", result[0], result[1], result[2], result[3]);
    bool ok = result[0] == 2 && result[3] == 8;

    values[2] = -3;
    CHECK(cudaMemcpy(in, values, sizeof values, cudaMemcpyHostToDevice));
    doubled<<<1, n>>>(in, out);
    fflush(stdout);
    cudaError_t failed = cudaDeviceSynchronize();
    printf("fails: %s\n", cudaGetErrorName(failed));
    cudaError_t after = cudaMemcpy(result, out, sizeof result, cudaMemcpyDeviceToHost);
    printf("afterwards: %s\n", cudaGetErrorName(after));
    ok = ok && failed == cudaErrorAssert && after == cudaErrorAssert;
    printf(ok ? "PASS\n" : "FAIL\n");
    return ok ? 0 : 1;
}
