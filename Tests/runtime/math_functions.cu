// Device math library calls in single precision and double-precision arithmetic the hardware does
// directly (sqrt, fma, division), compared with the host's within a tolerance.
#include <cmath>
#include "check.h"

__global__ void evaluate(const float *x, float *out, double *outd, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float v = x[i];
        out[4 * i] = sqrtf(v) + fabsf(-v);
        out[4 * i + 1] = expf(v / 10.0f);
        out[4 * i + 2] = sinf(v) * cosf(v);
        out[4 * i + 3] = logf(1.0f + v) + fmaxf(v, 3.0f) * rsqrtf(v + 1.0f);
        double d = v;
        outd[i] = sqrt(d) + fma(d, d, 0.5) / (d + 1.0);
    }
}

int main() {
    const int n = 64;
    float x[n], out[4 * n];
    double outd[n];
    for (int i = 0; i < n; i++) x[i] = i * 0.37f;
    float *dx, *dout;
    double *doutd;
    CHECK(cudaMalloc(&dx, sizeof x));
    CHECK(cudaMalloc(&dout, sizeof out));
    CHECK(cudaMalloc(&doutd, sizeof outd));
    CHECK(cudaMemcpy(dx, x, sizeof x, cudaMemcpyHostToDevice));
    evaluate<<<2, 32>>>(dx, dout, doutd, n);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(out, dout, sizeof out, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(outd, doutd, sizeof outd, cudaMemcpyDeviceToHost));
    int wrong = 0;
    for (int i = 0; i < n; i++) {
        float v = x[i];
        float expected[4] = {std::sqrt(v) + v, std::exp(v / 10.0f), std::sin(v) * std::cos(v),
                             std::log(1.0f + v) + std::fmax(v, 3.0f) / std::sqrt(v + 1.0f)};
        for (int k = 0; k < 4; k++) wrong += std::fabs(out[4 * i + k] - expected[k]) > 1e-5f * (1 + std::fabs(expected[k]));
        double d = v;
        wrong += std::fabs(outd[i] - (std::sqrt(d) + std::fma(d, d, 0.5) / (d + 1.0))) > 1e-12 * (1 + d * d);
    }
    printf("x[10] %.2f: sqrt+abs %.4f, exp %.4f, %d wrong\n", x[10], out[40], out[41], wrong);
    printf(wrong == 0 ? "PASS\n" : "FAIL\n");
    return wrong == 0 ? 0 : 1;
}
