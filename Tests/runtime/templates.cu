// One kernel template instantiated for four element types and two functors passed as template arguments.
#include "check.h"

struct Square {
    template <typename T> __host__ __device__ T operator()(T x) const { return x * x; }
};
struct Twice {
    template <typename T> __host__ __device__ T operator()(T x) const { return x + x; }
};

template <typename T, typename F> __global__ void apply(T *data, int n, F f) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) data[i] = f(data[i]) + T(1);
}

template <typename T, typename F> int run(const char *name, F f) {
    const int n = 1000;
    T host[n], out[n];
    for (int i = 0; i < n; i++) host[i] = T(i % 50);
    T *device;
    CHECK(cudaMalloc(&device, sizeof host));
    CHECK(cudaMemcpy(device, host, sizeof host, cudaMemcpyHostToDevice));
    apply<<<(n + 127) / 128, 128>>>(device, n, f);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(out, device, sizeof out, cudaMemcpyDeviceToHost));
    CHECK(cudaFree(device));
    double sum = 0;
    int wrong = 0;
    for (int i = 0; i < n; i++) {
        sum += (double)out[i];
        wrong += out[i] != f(host[i]) + T(1);
    }
    printf("%s: sum %.1f, out[7] %.1f, %d wrong\n", name, sum, (double)out[7], wrong);
    return wrong;
}

int main() {
    int wrong = run<int>("int square", Square()) + run<float>("float square", Square())
        + run<double>("double twice", Twice()) + run<long long>("long long twice", Twice());
    printf(wrong == 0 ? "PASS\n" : "FAIL\n");
    return wrong == 0 ? 0 : 1;
}
