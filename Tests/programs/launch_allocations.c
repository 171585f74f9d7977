/* Counts the heap allocations the driver makes while this program queues kernel launches: the
 * shim's fire-and-forget launch path must allocate nothing once warm. The program
 * defines malloc and its relatives itself, so every allocation in the process comes through here
 * (the library's too) and is counted while `counting` is set. Launches into a non-blocking
 * stream of a kernel with three pointer parameters and one with none; prints the counts. Not in
 * the differential suite: a driver that runs kernels on the host (the simulated device) allocates
 * per launch by design. */
#include "xpu_test.h"

#include <stdatomic.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_int counting;
static atomic_long allocations;

static void count(void) {
    if (atomic_load_explicit(&counting, memory_order_relaxed)) atomic_fetch_add(&allocations, 1);
}

void *malloc(size_t size) { count(); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { count(); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { count(); return __libc_realloc(p, size); }
void *aligned_alloc(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }
void *memalign(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    count();
    void *p = __libc_memalign(alignment, size);
    if (p == NULL) return 12; /* ENOMEM */
    *out = p;
    return 0;
}

static const char *ptx =
    ".version 7.0\n.target sm_70\n.address_size 64\n"
    ".visible .entry three(.param .u64 a, .param .u64 b, .param .u64 c) { ret; }\n"
    ".visible .entry none() { ret; }\n";

/* Allocations made while `launches` launches are queued (after a warm-up that grows buffers). */
static long measure(CUfunction f, void **args, CUstream stream, int launches) {
    for (int i = 0; i < 2000; i++) CHECK(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, stream, args, NULL));
    CHECK(cuStreamSynchronize(stream));
    atomic_store(&allocations, 0);
    atomic_store(&counting, 1);
    for (int i = 0; i < launches; i++) CHECK(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, stream, args, NULL));
    atomic_store(&counting, 0);
    CHECK(cuStreamSynchronize(stream));
    return atomic_load(&allocations);
}

int main(void) {
    CUcontext ctx;
    xpu_setup_primary(&ctx);
    CUmodule module;
    CUfunction three, none;
    CHECK(cuModuleLoadData(&module, ptx));
    CHECK(cuModuleGetFunction(&three, module, "three"));
    CHECK(cuModuleGetFunction(&none, module, "none"));
    CUstream stream;
    CHECK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
    CUdeviceptr d;
    CHECK(cuMemAlloc(&d, 4096));
    void *args[] = {&d, &d, &d};
    printf("allocations during 10000 launches, three pointer parameters: %ld\n", measure(three, args, stream, 10000));
    printf("allocations during 10000 launches, no parameters: %ld\n", measure(none, NULL, stream, 10000));
    CHECK(cuStreamDestroy(stream));
    CHECK(cuMemFree(d));
    CHECK(cuModuleUnload(module));
    return 0;
}
