// Recursion the compiler keeps as calls: Fibonacci (two recursive calls, the first result kept
// across the second) and Ackermann (a recursive call as an argument of another).
#include "check.h"

__device__ __noinline__ long long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

__device__ __noinline__ int ackermann(int m, int n) {
    if (m == 0) return n + 1;
    if (n == 0) return ackermann(m - 1, 1);
    return ackermann(m - 1, ackermann(m, n - 1));
}

__global__ void kernel(long long *fibs, int *acks, int base) {
    int i = threadIdx.x;
    fibs[i] = fib(base + i);
    acks[i] = ackermann(2, i);
}

long long fib_host(int n) { return n < 2 ? n : fib_host(n - 1) + fib_host(n - 2); }

int main() {
    const int n = 8, base = 6;
    long long *fibs, host_fibs[n];
    int *acks, host_acks[n];
    CHECK(cudaMalloc(&fibs, sizeof host_fibs));
    CHECK(cudaMalloc(&acks, sizeof host_acks));
    kernel<<<1, n>>>(fibs, acks, base);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(host_fibs, fibs, sizeof host_fibs, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(host_acks, acks, sizeof host_acks, cudaMemcpyDeviceToHost));
    int wrong = 0;
    for (int i = 0; i < n; i++) {
        printf("fib(%d) = %lld, ackermann(2, %d) = %d\n", base + i, host_fibs[i], i, host_acks[i]);
        // ackermann(2, n) = 2n + 3
        wrong += host_fibs[i] != fib_host(base + i) || host_acks[i] != 2 * i + 3;
    }
    CHECK(cudaFree(fibs));
    CHECK(cudaFree(acks));
    printf(wrong == 0 ? "PASS\n" : "FAIL\n");
    return wrong == 0 ? 0 : 1;
}
