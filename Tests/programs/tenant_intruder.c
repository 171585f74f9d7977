/* Tenant B of the isolation test: given tenant A's published handles and pointers on its command
 * line (context module function stream event data freed global), it names each from its own
 * session. Every attempt must fail with the documented error (proto/SECURITY.md, "Isolation")
 * and touch nothing: CUDA_ERROR_INVALID_VALUE for memory, CUDA_ERROR_INVALID_CONTEXT for a
 * context, CUDA_ERROR_INVALID_HANDLE for the other handles. Last, its own kernel writes to A's
 * memory: the launch faults with CUDA_ERROR_ILLEGAL_ADDRESS, sticky in B's context only. */
#include "tenant.h"

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: %s CONTEXT MODULE FUNCTION STREAM EVENT DATA FREED GLOBAL\n", argv[0]);
        return 2;
    }
    unsigned long long v[8];
    for (int i = 0; i < 8; i++) v[i] = strtoull(argv[i + 1], NULL, 0);
    CUcontext theirContext = (CUcontext)(uintptr_t)v[0];
    CUmodule theirModule = (CUmodule)(uintptr_t)v[1];
    CUfunction theirFunction = (CUfunction)(uintptr_t)v[2];
    CUstream theirStream = (CUstream)(uintptr_t)v[3];
    CUevent theirEvent = (CUevent)(uintptr_t)v[4];
    CUdeviceptr data = v[5], freed = v[6], global = v[7];

    CUcontext ctx;
    xpu_setup_primary(&ctx);
    tenant_kernels k = tenant_load();
    CUdeviceptr mine;
    CHECK(cuMemAlloc(&mine, 4096));
    CUstream stream;
    CHECK(cuStreamCreate(&stream, 0));
    unsigned char host[64];
    memset(host, 0x5a, sizeof host);

    /* Memory: exact, interior, freed and module-variable addresses, every copy and memset. */
    const CUresult invalid = CUDA_ERROR_INVALID_VALUE;
    EXPECT("HtoD to their allocation", cuMemcpyHtoD(data, host, 16), invalid);
    EXPECT("HtoD inside their allocation", cuMemcpyHtoD(data + 100, host, 16), invalid);
    EXPECT("HtoD to their freed allocation", cuMemcpyHtoD(freed, host, 16), invalid);
    EXPECT("HtoD to their module variable", cuMemcpyHtoD(global, host, 4), invalid);
    EXPECT("DtoH from their allocation", cuMemcpyDtoH(host, data, 16), invalid);
    EXPECT("DtoH inside their allocation", cuMemcpyDtoH(host, data + 100, 16), invalid);
    EXPECT("DtoH from their module variable", cuMemcpyDtoH(host, global, 4), invalid);
    int untouched = 1;
    for (size_t i = 0; i < sizeof host; i++) untouched &= host[i] == 0x5a;
    EXPECT_TRUE("host buffer untouched", untouched);
    EXPECT("DtoD from their allocation", cuMemcpyDtoD(mine, data, 16), invalid);
    EXPECT("DtoD to their allocation", cuMemcpyDtoD(data, mine, 16), invalid);
    EXPECT("memset D8 on their allocation", cuMemsetD8(data, 0xff, 16), invalid);
    EXPECT("memset D32 inside their allocation", cuMemsetD32(data + 64, 0, 4), invalid);
    EXPECT("memset D8 on their freed allocation", cuMemsetD8(freed, 0xff, 16), invalid);
    EXPECT("async HtoD to their allocation", cuMemcpyHtoDAsync(data, host, 16, stream), invalid);
    EXPECT("async DtoH from their allocation", cuMemcpyDtoHAsync(host, data, 16, stream), invalid);
    EXPECT("async DtoD to their allocation", cuMemcpyDtoDAsync(data, mine, 16, stream), invalid);
    EXPECT("async memset D8 on their allocation", cuMemsetD8Async(data, 0, 16, stream), invalid);
    EXPECT("async memset D32 on their allocation", cuMemsetD32Async(data + 64, 0, 4, stream), invalid);
    EXPECT("free their allocation", cuMemFree(data), invalid);
    EXPECT("free their freed allocation", cuMemFree(freed), invalid);
    CUmemorytype type;
    EXPECT("pointer attribute of their allocation", cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, data), invalid);
    EXPECT("own context unharmed after the memory attempts", cuCtxSynchronize(), CUDA_SUCCESS);

    /* Handles. */
    const CUresult badHandle = CUDA_ERROR_INVALID_HANDLE, badContext = CUDA_ERROR_INVALID_CONTEXT;
    EXPECT("set their context current", cuCtxSetCurrent(theirContext), badContext);
    EXPECT("push their context", cuCtxPushCurrent(theirContext), badContext);
    EXPECT("destroy their context", cuCtxDestroy(theirContext), badContext);
    CUfunction f;
    CUdeviceptr p;
    size_t n;
    int value;
    float ms;
    EXPECT("function of their module", cuModuleGetFunction(&f, theirModule, "tenant_poke"), badHandle);
    EXPECT("variable of their module", cuModuleGetGlobal(&p, &n, theirModule, "tenant_counter"), badHandle);
    EXPECT("unload their module", cuModuleUnload(theirModule), badHandle);
    EXPECT("attribute of their function", cuFuncGetAttribute(&value, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, theirFunction), badHandle);
    CUdeviceptr target = mine;
    unsigned one = 1;
    void *params[] = {&target, &one};
    EXPECT("launch their function", cuLaunchKernel(theirFunction, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL), badHandle);
    EXPECT("launch on their stream", tenant_poke_at(&k, mine, 1, theirStream), badHandle);
    EXPECT("query their stream", cuStreamQuery(theirStream), badHandle);
    EXPECT("synchronize their stream", cuStreamSynchronize(theirStream), badHandle);
    EXPECT("destroy their stream", cuStreamDestroy(theirStream), badHandle);
    EXPECT("record their event", cuEventRecord(theirEvent, stream), badHandle);
    EXPECT("query their event", cuEventQuery(theirEvent), badHandle);
    EXPECT("synchronize their event", cuEventSynchronize(theirEvent), badHandle);
    EXPECT("elapsed time of their event", cuEventElapsedTime(&ms, theirEvent, theirEvent), badHandle);
    EXPECT("destroy their event", cuEventDestroy(theirEvent), badHandle);
    EXPECT("own context unharmed after the handle attempts", cuCtxSynchronize(), CUDA_SUCCESS);

    /* Their pointer inside a kernel of ours: our context has no such memory, so it faults. */
    EXPECT("launch own kernel on their pointer", tenant_poke_at(&k, data, 0xdeadbeefu, stream), CUDA_SUCCESS);
    EXPECT("the fault", cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
    EXPECT("sticky in own context", cuMemAlloc(&p, 16), CUDA_ERROR_ILLEGAL_ADDRESS);
    return xpu_finish();
}
