/* A kernel that writes to an address nobody allocated: the launch itself succeeds, the fault
 * comes back at the next synchronization as CUDA_ERROR_ILLEGAL_ADDRESS, and it is sticky: every
 * later call in the context returns it. Neighbouring tenants are not disturbed (IsolationTests). */
#include "tenant.h"

int main(void) {
    CUcontext ctx;
    xpu_setup_primary(&ctx);
    tenant_kernels k = tenant_load();
    CUdeviceptr mine;
    CHECK(cuMemAlloc(&mine, 4096));
    EXPECT("launch writing to a wild address", tenant_poke_at(&k, (CUdeviceptr)0x10, 1, NULL), CUDA_SUCCESS);
    EXPECT("synchronize", cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
    CUdeviceptr p;
    unsigned word;
    EXPECT("allocate afterwards", cuMemAlloc(&p, 16), CUDA_ERROR_ILLEGAL_ADDRESS);
    EXPECT("copy afterwards", cuMemcpyDtoH(&word, mine, sizeof word), CUDA_ERROR_ILLEGAL_ADDRESS);
    EXPECT("synchronize again", cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
    return xpu_finish();
}
