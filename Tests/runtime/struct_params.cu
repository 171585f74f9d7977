// Kernels taking structures, many scalars of mixed sizes, and a pointer array by value.
#include "check.h"

struct Transform {
    float scale[3];
    double offset;
    char tag;
    long long id;
};

struct Pointers { int *dst[3]; };

__global__ void transform(Transform t, const float *in, float *out, int n, short step, char flag, double bias) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = in[i] * t.scale[i % 3] + (float)t.offset + step + (flag == 'y' ? 1.0f : 0.0f) + (float)bias + (float)(t.id % 10) + t.tag;
}

__global__ void scatter(Pointers p, int value) {
    p.dst[threadIdx.x % 3][threadIdx.x / 3] = value + threadIdx.x;
}

int main() {
    const int n = 30;
    float in[n], out[n];
    for (int i = 0; i < n; i++) in[i] = i;
    float *din, *dout;
    CHECK(cudaMalloc(&din, sizeof in));
    CHECK(cudaMalloc(&dout, sizeof out));
    CHECK(cudaMemcpy(din, in, sizeof in, cudaMemcpyHostToDevice));
    Transform t = {{1.0f, 2.0f, 3.0f}, 0.5, 2, 1234567};
    transform<<<1, 32>>>(t, din, dout, n, (short)3, 'y', 0.25);
    CHECK(cudaMemcpy(out, dout, sizeof out, cudaMemcpyDeviceToHost));
    int wrong = 0;
    for (int i = 0; i < n; i++) wrong += out[i] != in[i] * t.scale[i % 3] + 0.5f + 3 + 1.0f + 0.25f + 7 + 2;
    Pointers p;
    for (int k = 0; k < 3; k++) CHECK(cudaMalloc(&p.dst[k], 4 * sizeof(int)));
    scatter<<<1, 12>>>(p, 100);
    CHECK(cudaGetLastError());
    int rows[3][4];
    for (int k = 0; k < 3; k++) CHECK(cudaMemcpy(rows[k], p.dst[k], sizeof rows[k], cudaMemcpyDeviceToHost));
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 4; j++) wrong += rows[k][j] != 100 + j * 3 + k;
    printf("out[4] %.2f, rows[2][3] %d, %d wrong\n", out[4], rows[2][3], wrong);
    printf(wrong == 0 ? "PASS\n" : "FAIL\n");
    return wrong == 0 ? 0 : 1;
}
