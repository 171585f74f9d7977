/* Bulk copies of data that compresses well (zeros, text) and data that does not (random), from
 * 64 KiB to 33 MiB: every byte must come back as it went, whatever the transport does with it. */
#include "xpu_test.h"

static void fill(unsigned char *p, size_t n, int kind) {
    static const char text[] = "the quick brown fox jumps over the lazy dog; ";
    for (size_t i = 0; i < n; i++) {
        if (kind == 0) p[i] = 0;
        else if (kind == 1) p[i] = (unsigned char)text[i % (sizeof text - 1)];
    }
    if (kind == 2) xpu_fill(p, n, 77);
}

int main(void) {
    CUcontext ctx;
    xpu_setup_primary(&ctx);
    static const char *kinds[] = {"zeros", "text", "random"};
    size_t sizes[] = {64 << 10, (1 << 20) + 7, 16 << 20, (33 << 20) + 3};
    CUstream stream;
    CHECK(cuStreamCreate(&stream, 0));
    for (int kind = 0; kind < 3; kind++) {
        for (int s = 0; s < 4; s++) {
            size_t n = sizes[s];
            unsigned char *in = malloc(n), *out = malloc(n);
            fill(in, n, kind);
            memset(out, 0xEE, n);
            CUdeviceptr d;
            CHECK(cuMemAlloc(&d, n));
            if (s % 2 == 0) {
                CHECK(cuMemcpyHtoD(d, in, n));
                CHECK(cuMemcpyDtoH(out, d, n));
            } else {
                CHECK(cuMemcpyHtoDAsync(d, in, n, stream));
                CHECK(cuMemcpyDtoHAsync(out, d, n, stream));
                CHECK(cuStreamSynchronize(stream));
            }
            printf("%s %zu bytes: %s (hash %08x)\n", kinds[kind], n, memcmp(in, out, n) == 0 ? "intact" : "CORRUPT",
                   xpu_hash(out, n));
            if (memcmp(in, out, n) != 0) xpu_failures++;
            CHECK(cuMemFree(d));
            free(in);
            free(out);
        }
    }
    CHECK(cuStreamDestroy(stream));
    return xpu_finish();
}
