/* Entry points xpu-remote does not serve yet exist (programs probe them with dlsym), fail with
 * CUDA_ERROR_NOT_SUPPORTED, and are logged once; cuGetProcAddress reports them as not found.
 * (Run through the shim only.) */
#include "xpu_test.h"
#include <dlfcn.h>

typedef CUresult (*array_create_fn)(CUarray *, const CUDA_ARRAY_DESCRIPTOR *);

int main(void) {
    CHECK(cuInit(0));
    void *driver = dlopen("libcuda.so.1", RTLD_NOW);
    array_create_fn create = driver ? (array_create_fn)dlsym(driver, "cuArrayCreate_v2") : NULL;
    EXPECT_TRUE("cuArrayCreate_v2 is exported", create != NULL);
    if (create) {
        CUarray array;
        CUDA_ARRAY_DESCRIPTOR descriptor = {0};
        EXPECT("first call", create(&array, &descriptor), CUDA_ERROR_NOT_SUPPORTED);
        EXPECT("second call", create(&array, &descriptor), CUDA_ERROR_NOT_SUPPORTED);
    }
    void *function = (void *)1;
    CUdriverProcAddressQueryResult found = CU_GET_PROC_ADDRESS_SUCCESS;
    /* cuda.h: a symbol not found is CUDA_SUCCESS with pfn NULL; symbolStatus says why. */
    EXPECT("cuGetProcAddress(cuArrayCreate)", cuGetProcAddress("cuArrayCreate", &function, 13000, 0, &found),
           CUDA_SUCCESS);
    EXPECT_TRUE("reported as not found", found == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND && function == NULL);
    EXPECT("cuGetProcAddress(cuMemAlloc)", cuGetProcAddress("cuMemAlloc", &function, 13000, 0, &found), CUDA_SUCCESS);
    EXPECT_TRUE("cuMemAlloc resolves to the served cuMemAlloc_v2", function == dlsym(driver, "cuMemAlloc_v2"));
    EXPECT("cuGetProcAddress(cuMemcpyHtoD, per-thread)",
           cuGetProcAddress("cuMemcpyHtoD", &function, 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &found),
           CUDA_SUCCESS);
    EXPECT_TRUE("per-thread default stream variant", function == dlsym(driver, "cuMemcpyHtoD_v2_ptds"));
    return xpu_finish();
}
