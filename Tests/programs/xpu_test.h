/* Shared helpers for the end-to-end test programs. Each program prints deterministic text
 * (no pointers, no times) and exits 0 when the driver behaved as CUDA documents. */
#ifndef XPU_TEST_H
#define XPU_TEST_H

#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int xpu_failures = 0;

static inline const char *xpu_result_name(CUresult r) {
    const char *name = NULL;
    if (cuGetErrorName(r, &name) != CUDA_SUCCESS || name == NULL) {
        static char unknown[32];
        snprintf(unknown, sizeof unknown, "CUresult(%d)", (int)r);
        return unknown;
    }
    return name;
}

/* A call that must succeed; on any other result print the call and the result name, and stop. */
#define CHECK(call)                                                                          \
    do {                                                                                     \
        CUresult check_r_ = (call);                                                          \
        if (check_r_ != CUDA_SUCCESS) {                                                      \
            printf("FAIL %s:%d: %s -> %s\n", __FILE__, __LINE__, #call,                      \
                   xpu_result_name(check_r_));                                               \
            fflush(stdout);                                                                  \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

/* A call with one expected result: print "label: NAME" and count a mismatch as a failure. */
#define EXPECT(label, call, expected)                                                        \
    do {                                                                                     \
        CUresult expect_r_ = (call);                                                         \
        printf("%s: %s\n", (label), xpu_result_name(expect_r_));                             \
        if (expect_r_ != (expected)) {                                                       \
            printf("FAIL %s:%d: %s -> %s, expected %s\n", __FILE__, __LINE__, #call,         \
                   xpu_result_name(expect_r_), xpu_result_name(expected));                   \
            xpu_failures++;                                                                  \
        }                                                                                    \
    } while (0)

/* A call that must fail, with any error code: print "label: NAME". */
#define EXPECT_ERROR(label, call)                                                            \
    do {                                                                                     \
        CUresult expect_r_ = (call);                                                         \
        printf("%s: %s\n", (label), xpu_result_name(expect_r_));                             \
        if (expect_r_ == CUDA_SUCCESS) {                                                     \
            printf("FAIL %s:%d: %s unexpectedly succeeded\n", __FILE__, __LINE__, #call);     \
            xpu_failures++;                                                                  \
        }                                                                                    \
    } while (0)

/* A condition: print "label: yes|no"; "no" counts as a failure. */
#define EXPECT_TRUE(label, cond)                                                             \
    do {                                                                                     \
        int expect_c_ = (cond) ? 1 : 0;                                                      \
        printf("%s: %s\n", (label), expect_c_ ? "yes" : "no");                               \
        if (!expect_c_) xpu_failures++;                                                      \
    } while (0)

/* Makes the primary context of device 0 current and returns the device. */
static inline CUdevice xpu_setup_primary(CUcontext *ctx) {
    CUdevice dev;
    CHECK(cuInit(0));
    CHECK(cuDeviceGet(&dev, 0));
    CHECK(cuDevicePrimaryCtxRetain(ctx, dev));
    CHECK(cuCtxSetCurrent(*ctx));
    return dev;
}

static inline void xpu_teardown_primary(CUdevice dev) {
    CHECK(cuCtxSetCurrent(NULL));
    CHECK(cuDevicePrimaryCtxRelease(dev));
}

/* Deterministic byte pattern (xorshift), different per seed. */
static inline void xpu_fill(unsigned char *p, size_t n, unsigned seed) {
    unsigned x = seed * 2654435761u + 1u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)(x >> 7);
    }
}

/* FNV-1a, printed so that both runs show the same data went through. */
static inline unsigned xpu_hash(const unsigned char *p, size_t n) {
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static inline int xpu_finish(void) {
    if (xpu_failures) {
        printf("%d check(s) failed\n", xpu_failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}

#endif
