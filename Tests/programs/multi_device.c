/* Uses every device the driver shows (through the shim: devices of several servers). On each: a
 * context, a vector add and a memory pattern, all started before any is checked, then checked
 * device by device with that device's context current. A function of one device cannot be
 * launched in another's context. With "peer", device 1's pattern is copied over device 0's
 * (between two servers the shim stages it through the client), then copied back and forth with
 * cuMemcpyPeer / cuMemcpyPeerAsync (cuDeviceCanAccessPeer answers 0: no peer mappings).
 * Usage: multi_device EXPECTED_COUNT [peer] */
#include "xpu_test.h"

#include "vadd_ptx.h"

#define MAX_DEVICES 8
#define N 4096

int main(int argc, char **argv) {
    int expected = argc > 1 ? atoi(argv[1]) : 2;
    int peer = argc > 2 && strcmp(argv[2], "peer") == 0;

    CHECK(cuInit(0));
    int count = 0;
    CHECK(cuDeviceGetCount(&count));
    printf("devices: %d\n", count);
    EXPECT_TRUE("expected device count", count == expected);
    if (count > MAX_DEVICES) count = MAX_DEVICES;
    CUdevice none;
    EXPECT("device past the end", cuDeviceGet(&none, count), CUDA_ERROR_INVALID_DEVICE);

    size_t bytes = N * sizeof(float);
    float *a = malloc(bytes), *b = malloc(bytes), *c = malloc(bytes);
    unsigned char *pattern = malloc(N), *back = malloc(N);
    for (int i = 0; i < N; i++) {
        a[i] = (float)i * 0.5f;
        b[i] = (float)(N - i) * 0.25f;
    }

    CUcontext ctx[MAX_DEVICES];
    CUmodule module[MAX_DEVICES];
    CUfunction vadd[MAX_DEVICES];
    CUdeviceptr da[MAX_DEVICES], db[MAX_DEVICES], dc[MAX_DEVICES], dpattern[MAX_DEVICES];
    int n = N;
    for (int d = 0; d < count; d++) {
        CUdevice dev;
        CHECK(cuDeviceGet(&dev, d));
        CUuuid uuid;
        size_t total = 0;
        CHECK(cuDeviceGetUuid(&uuid, dev));
        CHECK(cuDeviceTotalMem(&total, dev));
        /* The simulated device's UUID ends with its ordinal on its server, and its bytes 9-14 name the
         * server (XPU_SIM_NODE); servers differ in memory. */
        printf("device %d: uuid ends %02x, %zu MiB, uuid ", d, (unsigned char)uuid.bytes[15], total >> 20);
        for (int i = 0; i < 16; i++) printf("%02x", (unsigned char)uuid.bytes[i]);
        printf("\n");
        CHECK(cuCtxCreate(&ctx[d], NULL, 0, dev));
        CUdevice current;
        CHECK(cuCtxGetDevice(&current));
        EXPECT_TRUE("context on its device", current == dev);
        CHECK(cuModuleLoadData(&module[d], vadd_ptx));
        CHECK(cuModuleGetFunction(&vadd[d], module[d], "vadd"));
        CHECK(cuMemAlloc(&da[d], bytes));
        CHECK(cuMemAlloc(&db[d], bytes));
        CHECK(cuMemAlloc(&dc[d], bytes));
        CHECK(cuMemAlloc(&dpattern[d], N));
        /* Each device adds a different multiple of b. */
        for (int i = 0; i < N; i++) c[i] = b[i] * (float)(d + 1);
        CHECK(cuMemcpyHtoD(da[d], a, bytes));
        CHECK(cuMemcpyHtoD(db[d], c, bytes));
        xpu_fill(pattern, N, (unsigned)d + 1);
        CHECK(cuMemcpyHtoD(dpattern[d], pattern, N));
        void *params[] = {&da[d], &db[d], &dc[d], &n};
        CHECK(cuLaunchKernel(vadd[d], N / 256, 1, 1, 256, 1, 1, 0, NULL, params, NULL));
    }

    for (int d = 0; d < count; d++) {
        CHECK(cuCtxSetCurrent(ctx[d]));
        CHECK(cuCtxSynchronize());
        CHECK(cuMemcpyDtoH(c, dc[d], bytes));
        int ok = 1;
        for (int i = 0; i < N; i++) {
            float want = a[i] + b[i] * (float)(d + 1);
            if (memcmp(&c[i], &want, sizeof want) != 0) ok = 0;
        }
        printf("device %d vadd: %s\n", d, ok ? "ok" : "MISMATCH");
        if (!ok) xpu_failures++;
        xpu_fill(pattern, N, (unsigned)d + 1);
        CHECK(cuMemcpyDtoH(back, dpattern[d], N));
        int own = memcmp(pattern, back, N) == 0;
        printf("device %d memory: %s\n", d, own ? "its own" : "MIXED");
        if (!own) xpu_failures++;
    }

    if (count >= 2) {
        CHECK(cuCtxSetCurrent(ctx[1]));
        void *params[] = {&da[1], &db[1], &dc[1], &n};
        EXPECT("device 0's function in device 1's context",
               cuLaunchKernel(vadd[0], 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL), CUDA_ERROR_INVALID_HANDLE);
    }

    if (peer && count >= 2) {
        CHECK(cuCtxSetCurrent(ctx[0]));
        CHECK(cuMemcpyDtoD(dpattern[0], dpattern[1], N));
        CHECK(cuMemcpyDtoH(back, dpattern[0], N));
        xpu_fill(pattern, N, 2);
        EXPECT_TRUE("device 1's pattern copied to device 0", memcmp(pattern, back, N) == 0);
        CHECK(cuMemsetD8(dpattern[0], 0x5a, N));
        CHECK(cuMemcpyDtoDAsync(dpattern[1], dpattern[0], N, NULL));
        CHECK(cuCtxSetCurrent(ctx[1]));
        CHECK(cuMemcpyDtoH(back, dpattern[1], N));
        int all = 1;
        for (int i = 0; i < N; i++) all &= back[i] == 0x5a;
        EXPECT_TRUE("device 0's bytes copied to device 1 (async)", all);

        /* No peer mappings: every pair answers 0, and programs copy with cuMemcpyPeer. */
        int can = -1;
        CHECK(cuDeviceCanAccessPeer(&can, 0, 1));
        printf("device 0 can access device 1 as a peer: %d\n", can);
        EXPECT("peer query of a device past the end", cuDeviceCanAccessPeer(&can, 0, count), CUDA_ERROR_INVALID_DEVICE);
        xpu_fill(pattern, N, 9);
        CHECK(cuCtxSetCurrent(ctx[1]));
        CHECK(cuMemcpyHtoD(dpattern[1], pattern, N));
        CHECK(cuMemcpyPeer(dpattern[0], ctx[0], dpattern[1], ctx[1], N));
        CHECK(cuCtxSetCurrent(ctx[0]));
        memset(back, 0, N);
        CHECK(cuMemcpyDtoH(back, dpattern[0], N));
        EXPECT_TRUE("device 1's bytes copied to device 0 with cuMemcpyPeer", memcmp(pattern, back, N) == 0);
        CHECK(cuMemsetD8(dpattern[0], 0x3c, N));
        CHECK(cuMemcpyPeerAsync(dpattern[1], ctx[1], dpattern[0], ctx[0], N, NULL));
        CHECK(cuCtxSynchronize());
        CHECK(cuCtxSetCurrent(ctx[1]));
        CHECK(cuMemcpyDtoH(back, dpattern[1], N));
        all = 1;
        for (int i = 0; i < N; i++) all &= back[i] == 0x3c;
        EXPECT_TRUE("device 0's bytes copied to device 1 with cuMemcpyPeerAsync", all);
        /* A pointer named with the other device's context is refused. */
        EXPECT("cuMemcpyPeer with a pointer outside its context's allocations",
               cuMemcpyPeer(dpattern[0], ctx[1], dpattern[1], ctx[1], N), CUDA_ERROR_INVALID_VALUE);
    }

    for (int d = 0; d < count; d++) CHECK(cuCtxDestroy(ctx[d]));
    free(a);
    free(b);
    free(c);
    free(pattern);
    free(back);
    return xpu_finish();
}
