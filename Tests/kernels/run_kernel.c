/* Driver-API program for the kernel suite: loads the PTX file given on the command line, runs
 * one kernel of Tests/kernels on fixed inputs, checks the results against a CPU reference, and
 * prints a hash of the outputs. Run directly on libxpusim.so and through xpu-run, both runs must
 * print the same thing (Tests/XPUEndToEndTests/KernelSuiteTests.swift).
 *   run_kernel <vector_add|matmul_tiled|reduce_warp|histogram> <file.ptx> */
#include <cuda.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                                        \
    do {                                                                                   \
        CUresult r_ = (call);                                                              \
        if (r_ != CUDA_SUCCESS) {                                                          \
            printf("%s failed: %d\n", #call, (int)r_);                                     \
            exit(2);                                                                       \
        }                                                                                  \
    } while (0)

static uint64_t fnv1a(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static uint32_t state = 12345;
static uint32_t next_random(void) {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
}

static CUdeviceptr upload(const void *host, size_t n) {
    CUdeviceptr d;
    CHECK(cuMemAlloc(&d, n ? n : 1));
    if (host && n) CHECK(cuMemcpyHtoD(d, host, n));
    else CHECK(cuMemsetD8(d, 0, n ? n : 1));
    return d;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: run_kernel <kernel> <file.ptx>\n");
        return 64;
    }
    const char *name = argv[1];
    FILE *f = fopen(argv[2], "rb");
    if (!f) { perror(argv[2]); return 66; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *ptx = calloc(1, size + 1);
    if (fread(ptx, 1, size, f) != (size_t)size) return 66;
    fclose(f);

    CUcontext ctx;
    CUmodule module;
    CUfunction fn;
    CHECK(cuInit(0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, 0));
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuModuleLoadData(&module, ptx));
    CHECK(cuModuleGetFunction(&fn, module, name));
    int ok = 1;
    uint64_t hash = 0;

    if (strcmp(name, "vector_add") == 0 || strcmp(name, "matmul_tiled") == 0) {
        int square = strcmp(name, "matmul_tiled") == 0;
        int n = square ? 40 : 5000;
        int count = square ? n * n : n;
        float *a = malloc(count * 4), *b = malloc(count * 4), *c = malloc(count * 4);
        for (int i = 0; i < count; i++) {
            a[i] = (float)(next_random() % 2001) / 1000.0f - 1.0f;
            b[i] = (float)(next_random() % 2001) / 1000.0f - 1.0f;
        }
        CUdeviceptr da = upload(a, count * 4), db = upload(b, count * 4), dc = upload(NULL, count * 4);
        void *args[] = {&da, &db, &dc, &n};
        if (square) CHECK(cuLaunchKernel(fn, (n + 15) / 16, (n + 15) / 16, 1, 16, 16, 1, 0, NULL, args, NULL));
        else CHECK(cuLaunchKernel(fn, (n + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, args, NULL));
        CHECK(cuCtxSynchronize());
        CHECK(cuMemcpyDtoH(c, dc, count * 4));
        for (int i = 0; i < count && ok; i++) {
            double want = 0;
            if (square) {
                for (int k = 0; k < n; k++) want += (double)a[(i / n) * n + k] * b[k * n + i % n];
                ok = fabs(want - c[i]) <= 1e-4;  /* n = 40 single-precision roundings of |sum| <= 40 */
            } else {
                ok = c[i] == a[i] + b[i];
            }
            if (!ok) printf("mismatch at %d: %g\n", i, c[i]);
        }
        hash = fnv1a(c, count * 4);
    } else if (strcmp(name, "reduce_warp") == 0) {
        int n = 20000;
        int *in = malloc(n * 4);
        long long sum = 0;
        unsigned positives = 0;
        for (int i = 0; i < n; i++) {
            in[i] = (int)(next_random() % 1500) - 500;
            sum += in[i];
            positives += in[i] > 0;
        }
        int one = 1;
        CUdeviceptr din = upload(in, n * 4), dresult = upload(NULL, 8), dpos = upload(NULL, 4), dsmall = upload(&one, 4);
        CHECK(cuMemsetD8(dresult, 0, 8));
        CHECK(cuMemsetD8(dpos, 0, 4));
        void *args[] = {&din, &n, &dresult, &dpos, &dsmall};
        CHECK(cuLaunchKernel(fn, 5, 1, 1, 128, 1, 1, 0, NULL, args, NULL));
        long long got = 0;
        unsigned gotPositives = 0;
        int small = 0;
        CHECK(cuMemcpyDtoH(&got, dresult, 8));
        CHECK(cuMemcpyDtoH(&gotPositives, dpos, 4));
        CHECK(cuMemcpyDtoH(&small, dsmall, 4));
        ok = got == sum && gotPositives == positives && small == 1;
        printf("sum %lld positives %u small %d\n", got, gotPositives, small);
        hash = fnv1a(&got, 8);
    } else if (strcmp(name, "histogram") == 0) {
        int n = 30000;
        unsigned char *data = malloc(n);
        unsigned want[256] = {0}, got[256], maxByte = 0, wantMax = 0;
        for (int i = 0; i < n; i++) {
            data[i] = (unsigned char)(next_random() % 251);
            want[data[i]]++;
            if (data[i] > wantMax) wantMax = data[i];
        }
        CUdeviceptr dd = upload(data, n), dbins = upload(NULL, 1024), dmax = upload(NULL, 4);
        CHECK(cuMemsetD8(dbins, 0, 1024));
        CHECK(cuMemsetD8(dmax, 0, 4));
        void *args[] = {&dd, &n, &dbins, &dmax};
        CHECK(cuLaunchKernel(fn, 4, 1, 1, 192, 1, 1, 0, NULL, args, NULL));
        CHECK(cuMemcpyDtoH(got, dbins, 1024));
        CHECK(cuMemcpyDtoH(&maxByte, dmax, 4));
        ok = memcmp(got, want, sizeof want) == 0 && maxByte == wantMax;
        hash = fnv1a(got, sizeof got);
    } else {
        printf("unknown kernel %s\n", name);
        return 64;
    }
    printf("%s %s hash %016llx\n", name, ok ? "ok" : "MISMATCH", (unsigned long long)hash);
    CHECK(cuModuleUnload(module));
    CHECK(cuDevicePrimaryCtxRelease(0));
    return ok ? 0 : 1;
}
