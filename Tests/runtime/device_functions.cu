// Device functions that stay calls (noinline), recursion, and a kernel launched many times in a loop.
#include "check.h"

__device__ __noinline__ int gcd(int a, int b) { return b == 0 ? a : gcd(b, a % b); }
__device__ __noinline__ int digits(int x) { int d = 1; while (x >= 10) { x /= 10; d++; } return d; }

__global__ void kernel(int *out, int n, int round) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] += gcd(i + round, 360) + digits(i * round);
}

int gcd_host(int a, int b) { return b == 0 ? a : gcd_host(b, a % b); }
int digits_host(int x) { int d = 1; while (x >= 10) { x /= 10; d++; } return d; }

int main() {
    const int n = 500, rounds = 50;
    int *d, out[n];
    CHECK(cudaMalloc(&d, sizeof out));
    CHECK(cudaMemset(d, 0, sizeof out));
    for (int r = 1; r <= rounds; r++) kernel<<<4, 128>>>(d, n, r);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(out, d, sizeof out, cudaMemcpyDeviceToHost));
    int wrong = 0;
    long long total = 0;
    for (int i = 0; i < n; i++) {
        int expected = 0;
        for (int r = 1; r <= rounds; r++) expected += gcd_host(i + r, 360) + digits_host(i * r);
        wrong += out[i] != expected;
        total += out[i];
    }
    printf("total %lld, %d wrong\n", total, wrong);
    printf(wrong == 0 ? "PASS\n" : "FAIL\n");
    return wrong == 0 ? 0 : 1;
}
