/* Device discovery, attributes, contexts, cuGetProcAddress and error-name tables. */
#include "xpu_test.h"

typedef CUresult (*mem_alloc_fn)(CUdeviceptr *, size_t);
typedef CUresult (*mem_free_fn)(CUdeviceptr);

static void print_attribute(const char *name, CUdevice_attribute attribute, CUdevice dev) {
    int value = 0;
    CHECK(cuDeviceGetAttribute(&value, attribute, dev));
    printf("attribute %s: %d\n", name, value);
}

#define ATTRIBUTE(a) print_attribute(#a, CU_DEVICE_ATTRIBUTE_##a, dev)

int main(void) {
    int version = 0;
    CHECK(cuDriverGetVersion(&version)); /* allowed before cuInit */
    printf("driver version before init: %d\n", version);
    EXPECT("cuDriverGetVersion(NULL)", cuDriverGetVersion(NULL), CUDA_ERROR_INVALID_VALUE);

    CHECK(cuInit(0));
    int after = 0;
    CHECK(cuDriverGetVersion(&after));
    EXPECT_TRUE("driver version unchanged by init", after == version);

    int count = 0;
    CHECK(cuDeviceGetCount(&count));
    printf("device count: %d\n", count);
    EXPECT_TRUE("at least one device", count >= 1);

    CUdevice dev;
    CHECK(cuDeviceGet(&dev, 0));
    printf("device 0 ordinal: %d\n", (int)dev);
    CUdevice bad;
    EXPECT("cuDeviceGet(count)", cuDeviceGet(&bad, count), CUDA_ERROR_INVALID_DEVICE);

    char name[256];
    memset(name, 0, sizeof name);
    CHECK(cuDeviceGetName(name, sizeof name, dev));
    printf("name: %s\n", name);
    EXPECT_TRUE("name is not empty", name[0] != 0);

    CUuuid uuid;
    CHECK(cuDeviceGetUuid(&uuid, dev));
    printf("uuid: ");
    for (int i = 0; i < 16; i++) printf("%02x", (unsigned char)uuid.bytes[i]);
    printf("\n");

    size_t total = 0;
    CHECK(cuDeviceTotalMem(&total, dev));
    printf("total memory: %zu\n", total);
    EXPECT_TRUE("total memory > 0", total > 0);

    int major = 0, minor = 0;
    CHECK(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
    CHECK(cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
    printf("compute capability: %d.%d\n", major, minor);

    ATTRIBUTE(MAX_THREADS_PER_BLOCK);
    ATTRIBUTE(MAX_BLOCK_DIM_X);
    ATTRIBUTE(MAX_BLOCK_DIM_Y);
    ATTRIBUTE(MAX_BLOCK_DIM_Z);
    ATTRIBUTE(MAX_GRID_DIM_X);
    ATTRIBUTE(MAX_GRID_DIM_Y);
    ATTRIBUTE(MAX_GRID_DIM_Z);
    ATTRIBUTE(MAX_SHARED_MEMORY_PER_BLOCK);
    ATTRIBUTE(TOTAL_CONSTANT_MEMORY);
    ATTRIBUTE(WARP_SIZE);
    ATTRIBUTE(MAX_REGISTERS_PER_BLOCK);
    ATTRIBUTE(MULTIPROCESSOR_COUNT);
    ATTRIBUTE(INTEGRATED);
    ATTRIBUTE(CONCURRENT_KERNELS);
    ATTRIBUTE(UNIFIED_ADDRESSING);
    ATTRIBUTE(L2_CACHE_SIZE);
    ATTRIBUTE(MAX_THREADS_PER_MULTIPROCESSOR);
    ATTRIBUTE(ASYNC_ENGINE_COUNT);

    int value = 0;
    EXPECT("cuDeviceGetAttribute(invalid attribute)",
           cuDeviceGetAttribute(&value, (CUdevice_attribute)100000, dev), CUDA_ERROR_INVALID_VALUE);
    EXPECT("cuDeviceGetAttribute(invalid device)",
           cuDeviceGetAttribute(&value, CU_DEVICE_ATTRIBUTE_WARP_SIZE, (CUdevice)count),
           CUDA_ERROR_INVALID_DEVICE);

    /* Primary context: inactive until retained, inactive again after the last release. */
    unsigned int flags = 0;
    int active = -1;
    CHECK(cuDevicePrimaryCtxGetState(dev, &flags, &active));
    printf("primary context active before retain: %d\n", active);
    CUcontext primary = NULL;
    CHECK(cuDevicePrimaryCtxRetain(&primary, dev));
    EXPECT_TRUE("primary context is non-NULL", primary != NULL);
    CHECK(cuDevicePrimaryCtxGetState(dev, &flags, &active));
    printf("primary context active after retain: %d\n", active);
    CUcontext primary2 = NULL;
    CHECK(cuDevicePrimaryCtxRetain(&primary2, dev));
    EXPECT_TRUE("second retain returns the same context", primary2 == primary);
    CHECK(cuDevicePrimaryCtxRelease(dev));
    CHECK(cuDevicePrimaryCtxGetState(dev, &flags, &active));
    printf("primary context active after one of two releases: %d\n", active);
    CHECK(cuDevicePrimaryCtxRelease(dev));
    CHECK(cuDevicePrimaryCtxGetState(dev, &flags, &active));
    printf("primary context active after last release: %d\n", active);

    /* Created contexts and the context stack. */
    CUcontext current = (CUcontext)1;
    CHECK(cuCtxGetCurrent(&current));
    EXPECT_TRUE("no current context at start", current == NULL);
    CUcontext ctx = NULL;
    CHECK(cuCtxCreate(&ctx, NULL, 0, dev));
    EXPECT_TRUE("created context is non-NULL", ctx != NULL);
    CHECK(cuCtxGetCurrent(&current));
    EXPECT_TRUE("created context is current", current == ctx);
    CUdevice ctxDev = -1;
    CHECK(cuCtxGetDevice(&ctxDev));
    printf("context device: %d\n", (int)ctxDev);

    CUcontext popped = NULL;
    CHECK(cuCtxPopCurrent(&popped));
    EXPECT_TRUE("popped the created context", popped == ctx);
    CHECK(cuCtxGetCurrent(&current));
    EXPECT_TRUE("stack empty after pop", current == NULL);
    EXPECT("cuCtxGetDevice without context", cuCtxGetDevice(&ctxDev), CUDA_ERROR_INVALID_CONTEXT);
    EXPECT("cuCtxPopCurrent on empty stack", cuCtxPopCurrent(&popped), CUDA_ERROR_INVALID_CONTEXT);

    CHECK(cuCtxPushCurrent(ctx));
    CHECK(cuCtxGetCurrent(&current));
    EXPECT_TRUE("pushed context is current", current == ctx);

    CUcontext ctx2 = NULL;
    CHECK(cuCtxCreate(&ctx2, NULL, 0, dev));
    EXPECT_TRUE("second context differs", ctx2 != ctx);
    CHECK(cuCtxGetCurrent(&current));
    EXPECT_TRUE("second context is current", current == ctx2);
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuCtxGetCurrent(&current));
    EXPECT_TRUE("set current replaces top", current == ctx);
    CHECK(cuCtxPopCurrent(&popped));
    EXPECT_TRUE("popped the set context", popped == ctx);
    CHECK(cuCtxGetCurrent(&current));
    EXPECT_TRUE("stack below holds the first push", current == ctx);
    CHECK(cuCtxPopCurrent(&popped));
    CHECK(cuCtxDestroy(ctx2));

    /* cuGetProcAddress hands out a working entry point. */
    CHECK(cuCtxPushCurrent(ctx));
    void *fn = NULL;
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
    CHECK(cuGetProcAddress("cuMemAlloc", &fn, 13000, CU_GET_PROC_ADDRESS_DEFAULT, &status));
    EXPECT_TRUE("cuGetProcAddress(cuMemAlloc) non-NULL", fn != NULL);
    printf("cuGetProcAddress(cuMemAlloc) status: %d\n", (int)status);
    void *freeFn = NULL;
    CHECK(cuGetProcAddress("cuMemFree", &freeFn, 13000, CU_GET_PROC_ADDRESS_DEFAULT, &status));
    EXPECT_TRUE("cuGetProcAddress(cuMemFree) non-NULL", freeFn != NULL);
    if (fn && freeFn) {
        CUdeviceptr p = 0;
        CHECK(((mem_alloc_fn)fn)(&p, 4096));
        EXPECT_TRUE("allocation through proc address non-zero", p != 0);
        CHECK(((mem_free_fn)freeFn)(p));
    }
    /* An unknown name is no error (cuda.h): a NULL pointer, and the reason in the status. */
    void *none = (void *)1;
    EXPECT("cuGetProcAddress(unknown)",
           cuGetProcAddress("cuNoSuchFunctionXPU", &none, 13000, CU_GET_PROC_ADDRESS_DEFAULT, &status),
           CUDA_SUCCESS);
    EXPECT_TRUE("cuGetProcAddress(unknown) status SYMBOL_NOT_FOUND", status == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    printf("cuGetProcAddress(unknown) status: %d, pointer NULL: %s\n", (int)status,
           none == NULL ? "yes" : "no");
    CHECK(cuCtxPopCurrent(&popped));
    CHECK(cuCtxDestroy(ctx));

    /* Error tables. */
    const CUresult codes[] = {CUDA_SUCCESS, CUDA_ERROR_INVALID_VALUE, CUDA_ERROR_OUT_OF_MEMORY,
                              CUDA_ERROR_NOT_INITIALIZED, CUDA_ERROR_INVALID_CONTEXT,
                              CUDA_ERROR_INVALID_HANDLE, CUDA_ERROR_NOT_FOUND, CUDA_ERROR_NOT_READY,
                              CUDA_ERROR_ILLEGAL_ADDRESS, CUDA_ERROR_LAUNCH_FAILED,
                              CUDA_ERROR_NOT_SUPPORTED, CUDA_ERROR_UNKNOWN};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *n = NULL, *s = NULL;
        CHECK(cuGetErrorName(codes[i], &n));
        CHECK(cuGetErrorString(codes[i], &s));
        printf("error %d: %s: %s\n", (int)codes[i], n, s);
    }
    const char *n = (const char *)1, *s = (const char *)1;
    EXPECT("cuGetErrorName(9999)", cuGetErrorName((CUresult)9999, &n), CUDA_ERROR_INVALID_VALUE);
    EXPECT_TRUE("cuGetErrorName(9999) sets NULL", n == NULL);
    EXPECT("cuGetErrorString(9999)", cuGetErrorString((CUresult)9999, &s), CUDA_ERROR_INVALID_VALUE);
    EXPECT_TRUE("cuGetErrorString(9999) sets NULL", s == NULL);

    return xpu_finish();
}
