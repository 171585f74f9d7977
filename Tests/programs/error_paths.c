/* Calls that must fail, and the error each one reports. None of them may leave a sticky error:
 * the context keeps working afterwards. */
#include "xpu_test.h"

static const char bad_ptx[] =
    ".version 7.0\n"
    ".target sm_80\n"
    ".address_size 64\n"
    ".visible .entry broken(\n"
    "\t.param .u64 broken_param_0\n"
    ")\n"
    "{\n"
    "\tthis is not an instruction;\n"
    "\tret;\n"
    "}\n";

static const char good_ptx[] =
    ".version 7.0\n"
    ".target sm_80\n"
    ".address_size 64\n"
    ".visible .entry nothing()\n"
    "{\n"
    "\tret;\n"
    "}\n";

/* The context still does real work: a small round trip must succeed. */
static void still_works(const char *after) {
    CUdeviceptr d = 0;
    unsigned char in[64], out[64];
    xpu_fill(in, sizeof in, 3);
    memset(out, 0, sizeof out);
    CHECK(cuMemAlloc(&d, sizeof in));
    CHECK(cuMemcpyHtoD(d, in, sizeof in));
    CHECK(cuMemcpyDtoH(out, d, sizeof out));
    CHECK(cuMemFree(d));
    char label[128];
    snprintf(label, sizeof label, "context usable after %s", after);
    EXPECT_TRUE(label, memcmp(in, out, sizeof in) == 0);
}

int main(void) {
    /* Before cuInit. */
    int count = 0;
    CUdevice dev;
    EXPECT("cuDeviceGetCount before cuInit", cuDeviceGetCount(&count), CUDA_ERROR_NOT_INITIALIZED);
    EXPECT("cuDeviceGet before cuInit", cuDeviceGet(&dev, 0), CUDA_ERROR_NOT_INITIALIZED);
    CUdeviceptr early = 0;
    EXPECT("cuMemAlloc before cuInit", cuMemAlloc(&early, 16), CUDA_ERROR_NOT_INITIALIZED);
    CUcontext none = NULL;
    EXPECT("cuCtxGetCurrent before cuInit", cuCtxGetCurrent(&none), CUDA_ERROR_NOT_INITIALIZED);
    EXPECT("cuInit(flags=1)", cuInit(1), CUDA_ERROR_INVALID_VALUE);

    CUcontext ctx;
    dev = xpu_setup_primary(&ctx);

    /* Allocation. */
    CUdeviceptr p = 0;
    EXPECT("cuMemAlloc(0 bytes)", cuMemAlloc(&p, 0), CUDA_ERROR_INVALID_VALUE);
    size_t freeMem = 0, total = 0;
    CHECK(cuMemGetInfo(&freeMem, &total));
    EXPECT("cuMemAlloc(total + 1)", cuMemAlloc(&p, total + 1), CUDA_ERROR_OUT_OF_MEMORY);
    still_works("out of memory");

    /* Frees. */
    CUdeviceptr d = 0;
    CHECK(cuMemAlloc(&d, 1 << 20));
    CHECK(cuMemFree(d));
    EXPECT("cuMemFree(already freed)", cuMemFree(d), CUDA_ERROR_INVALID_VALUE);
    CUdeviceptr live = 0;
    CHECK(cuMemAlloc(&live, 1 << 20));
    EXPECT("cuMemFree(interior pointer)", cuMemFree(live + 256), CUDA_ERROR_INVALID_VALUE);
    EXPECT("cuMemFree(bogus pointer)", cuMemFree((CUdeviceptr)0x10), CUDA_ERROR_INVALID_VALUE);
    still_works("bad frees");

    /* Copies outside any allocation or past the end of one. */
    unsigned char host[4096];
    memset(host, 0x42, sizeof host);
    EXPECT("cuMemcpyHtoD(bogus device pointer)", cuMemcpyHtoD((CUdeviceptr)0x10, host, 16),
           CUDA_ERROR_INVALID_VALUE);
    EXPECT("cuMemcpyDtoH(bogus device pointer)", cuMemcpyDtoH(host, (CUdeviceptr)0x10, 16),
           CUDA_ERROR_INVALID_VALUE);
    CUdeviceptr small = 0;
    CHECK(cuMemAlloc(&small, 1000));
    EXPECT("cuMemcpyHtoD(past the end)", cuMemcpyHtoD(small + 500, host, 4096),
           CUDA_ERROR_INVALID_VALUE);
    EXPECT("cuMemcpyDtoH(past the end)", cuMemcpyDtoH(host, small + 999, 2),
           CUDA_ERROR_INVALID_VALUE);
    EXPECT("cuMemcpyDtoD(past the end)", cuMemcpyDtoD(live, small, 4096),
           CUDA_ERROR_INVALID_VALUE);
    EXPECT("cuMemsetD8(past the end)", cuMemsetD8(small + 10, 0, 1000), CUDA_ERROR_INVALID_VALUE);
    EXPECT("cuMemcpyHtoD(NULL host pointer)", cuMemcpyHtoD(small, NULL, 16),
           CUDA_ERROR_INVALID_VALUE);
    still_works("bad copies");

    /* Destroyed streams, events and modules. */
    CUstream stream;
    CHECK(cuStreamCreate(&stream, 0));
    CHECK(cuStreamDestroy(stream));
    EXPECT_ERROR("cuStreamQuery(destroyed stream)", cuStreamQuery(stream));
    EXPECT_ERROR("cuStreamSynchronize(destroyed stream)", cuStreamSynchronize(stream));

    CUevent event;
    CHECK(cuEventCreate(&event, 0));
    CHECK(cuEventDestroy(event));
    EXPECT_ERROR("cuEventQuery(destroyed event)", cuEventQuery(event));
    EXPECT_ERROR("cuEventSynchronize(destroyed event)", cuEventSynchronize(event));
    EXPECT("cuEventCreate(bad flags)", cuEventCreate(&event, 0x80000000u), CUDA_ERROR_INVALID_VALUE);

    CUmodule module;
    CHECK(cuModuleLoadData(&module, good_ptx));
    CUfunction fn;
    CHECK(cuModuleGetFunction(&fn, module, "nothing"));
    CHECK(cuModuleUnload(module));
    EXPECT_ERROR("cuModuleGetFunction(unloaded module)", cuModuleGetFunction(&fn, module, "nothing"));
    still_works("destroyed handles");

    /* NULL output pointers. */
    EXPECT("cuMemAlloc(NULL)", cuMemAlloc(NULL, 16), CUDA_ERROR_INVALID_VALUE);
    EXPECT("cuStreamCreate(NULL)", cuStreamCreate(NULL, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT("cuEventCreate(NULL)", cuEventCreate(NULL, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT("cuDeviceGetCount(NULL)", cuDeviceGetCount(NULL), CUDA_ERROR_INVALID_VALUE);

    /* Bad PTX. */
    CUmodule broken = NULL;
    EXPECT("cuModuleLoadData(bad PTX)", cuModuleLoadData(&broken, bad_ptx), CUDA_ERROR_INVALID_PTX);
    still_works("bad PTX");

    /* A destroyed context. */
    CUcontext created;
    CHECK(cuCtxCreate(&created, NULL, 0, dev));
    CUcontext popped;
    CHECK(cuCtxPopCurrent(&popped));
    CHECK(cuCtxDestroy(created));
    EXPECT_ERROR("cuCtxPushCurrent(destroyed context)", cuCtxPushCurrent(created));
    CUcontext current = NULL;
    CHECK(cuCtxGetCurrent(&current));
    if (current == created) CHECK(cuCtxPopCurrent(&popped));
    CHECK(cuCtxSetCurrent(ctx));
    still_works("destroyed context");

    CHECK(cuMemFree(small));
    CHECK(cuMemFree(live));
    xpu_teardown_primary(dev);
    return xpu_finish();
}
