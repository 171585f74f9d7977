/*
 * Libraries and kernels (cuLibrary*, cuKernel*), emulated on modules: a library is the module of
 * its image loaded into the context current at cuLibraryLoadData (the primary context of device 0
 * when none is), and a kernel is that module's function, so a kernel handle is accepted wherever a
 * function handle is. The image goes to cuModuleLoadData whole (a fatbinary wrapper is unwrapped
 * first), so the driver that runs it picks the code for its device.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "CXPURuntimeSupport.h"

#define FATBIN_WRAPPER_MAGIC 0x466243B1u

struct xpu_library {
    CUmodule module;
    struct xpu_library *next;
};

static pthread_mutex_t library_lock = PTHREAD_MUTEX_INITIALIZER;
static struct xpu_library *libraries;

/* The library's module, or NULL when `library` is not a live library. */
static CUmodule library_module(CUlibrary library) {
    CUmodule module = NULL;
    pthread_mutex_lock(&library_lock);
    for (struct xpu_library *l = libraries; l != NULL; l = l->next) {
        if ((CUlibrary)l == library) module = l->module;
    }
    pthread_mutex_unlock(&library_lock);
    return module;
}

/* What cuModuleLoadData takes: the fatbinary a wrapper points at, or the image itself. A wrapper
 * registers one translation unit's container, so `*single` is set for it (fatbinary.c). */
static const void *loadable_image(const void *code, int *single) {
    uint32_t magic;
    memcpy(&magic, code, sizeof magic);
    *single = magic == FATBIN_WRAPPER_MAGIC;
    if (magic != FATBIN_WRAPPER_MAGIC) return code;
    const void *fatbinary;
    memcpy(&fatbinary, (const char *)code + 8, sizeof fatbinary);
    return fatbinary;
}

/* cuModuleLoadData of `image`; of its first fatbinary container only when `single`. */
static CUresult load_image(CUmodule *module, const void *image, int single) {
    if (single) xpu_fatbinary_single_begin();
    CUresult result = cuModuleLoadData(module, image);
    if (single) xpu_fatbinary_single_end();
    return result;
}

/* Loads into the current context, or into device 0's primary context when the thread has none. */
static CUresult load_module(CUmodule *module, const void *image, int single) {
    CUcontext current = NULL;
    CUresult result = cuCtxGetCurrent(&current);
    if (result != CUDA_SUCCESS) return result;
    if (current != NULL) return load_image(module, image, single);
    CUdevice device;
    CUcontext primary;
    result = cuDeviceGet(&device, 0);
    if (result == CUDA_SUCCESS) result = xpu_runtime_primary_context(&primary, device);
    if (result != CUDA_SUCCESS) return result;
    result = cuCtxPushCurrent_v2(primary);
    if (result != CUDA_SUCCESS) return result;
    result = load_image(module, image, single);
    CUcontext popped;
    cuCtxPopCurrent_v2(&popped);
    return result;
}

CUresult cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions, void **jitOptionsValues,
                           unsigned int numJitOptions, CUlibraryOption *libraryOptions, void **libraryOptionValues,
                           unsigned int numLibraryOptions) {
    (void)jitOptions, (void)jitOptionsValues, (void)numJitOptions;
    (void)libraryOptions, (void)libraryOptionValues, (void)numLibraryOptions;
    if (library == NULL || code == NULL) return CUDA_ERROR_INVALID_VALUE;
    int single;
    const void *image = loadable_image(code, &single);
    if (image == NULL) return CUDA_ERROR_INVALID_IMAGE;
    struct xpu_library *loaded = calloc(1, sizeof *loaded);
    if (loaded == NULL) return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult result = load_module(&loaded->module, image, single);
    if (result != CUDA_SUCCESS) {
        free(loaded);
        return result;
    }
    pthread_mutex_lock(&library_lock);
    loaded->next = libraries;
    libraries = loaded;
    pthread_mutex_unlock(&library_lock);
    *library = (CUlibrary)loaded;
    return CUDA_SUCCESS;
}

CUresult cuLibraryLoadFromFile(CUlibrary *library, const char *fileName, CUjit_option *jitOptions,
                               void **jitOptionsValues, unsigned int numJitOptions, CUlibraryOption *libraryOptions,
                               void **libraryOptionValues, unsigned int numLibraryOptions) {
    if (library == NULL || fileName == NULL) return CUDA_ERROR_INVALID_VALUE;
    int file = open(fileName, O_RDONLY | O_CLOEXEC);
    if (file < 0) return CUDA_ERROR_FILE_NOT_FOUND;
    struct stat status;
    if (fstat(file, &status) != 0 || status.st_size <= 0 || status.st_size > (1 << 30)) {
        close(file);
        return CUDA_ERROR_INVALID_IMAGE;
    }
    size_t size = (size_t)status.st_size;
    /* One byte more, zero: PTX text is read up to its terminator. */
    char *image = calloc(1, size + 1);
    if (image == NULL) {
        close(file);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    size_t done = 0;
    while (done < size) {
        ssize_t got = read(file, image + done, size - done);
        if (got <= 0) break;
        done += (size_t)got;
    }
    close(file);
    CUresult result = done == size ? cuLibraryLoadData(library, image, jitOptions, jitOptionsValues, numJitOptions,
                                                       libraryOptions, libraryOptionValues, numLibraryOptions)
                                   : CUDA_ERROR_FILE_NOT_FOUND;
    free(image);
    return result;
}

CUresult cuLibraryUnload(CUlibrary library) {
    pthread_mutex_lock(&library_lock);
    struct xpu_library **link = &libraries;
    while (*link != NULL && (CUlibrary)*link != library) link = &(*link)->next;
    struct xpu_library *found = *link;
    if (found != NULL) *link = found->next;
    pthread_mutex_unlock(&library_lock);
    if (found == NULL) return CUDA_ERROR_INVALID_HANDLE;
    CUresult result = cuModuleUnload(found->module);
    free(found);
    return result;
}

CUresult cuLibraryGetModule(CUmodule *pMod, CUlibrary library) {
    if (pMod == NULL) return CUDA_ERROR_INVALID_VALUE;
    CUmodule module = library_module(library);
    if (module == NULL) return CUDA_ERROR_INVALID_HANDLE;
    *pMod = module;
    return CUDA_SUCCESS;
}

CUresult cuLibraryGetKernel(CUkernel *pKernel, CUlibrary library, const char *name) {
    if (pKernel == NULL || name == NULL) return CUDA_ERROR_INVALID_VALUE;
    CUmodule module = library_module(library);
    if (module == NULL) return CUDA_ERROR_INVALID_HANDLE;
    CUfunction function;
    CUresult result = cuModuleGetFunction(&function, module, name);
    if (result == CUDA_SUCCESS) *pKernel = (CUkernel)function;
    return result;
}

/* Either output may be NULL (the runtime asks for the address alone). */
CUresult cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library, const char *name) {
    CUmodule module = library_module(library);
    if (module == NULL) return CUDA_ERROR_INVALID_HANDLE;
    CUdeviceptr address = 0;
    size_t size = 0;
    CUresult result = cuModuleGetGlobal_v2(&address, &size, module, name);
    if (result != CUDA_SUCCESS) return result;
    if (dptr != NULL) *dptr = address;
    if (bytes != NULL) *bytes = size;
    return CUDA_SUCCESS;
}

/* The kernel's function: the same handle (see the top of this file). */
CUresult cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel) {
    if (pFunc == NULL) return CUDA_ERROR_INVALID_VALUE;
    if (kernel == NULL) return CUDA_ERROR_INVALID_HANDLE;
    *pFunc = (CUfunction)kernel;
    return CUDA_SUCCESS;
}

/* The device is the one the kernel's module was loaded for. */
CUresult cuKernelGetAttribute(int *pi, CUfunction_attribute attrib, CUkernel kernel, CUdevice dev) {
    (void)dev;
    return cuFuncGetAttribute(pi, attrib, (CUfunction)kernel);
}

CUresult cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin) {
    if (module == NULL || fatCubin == NULL) return CUDA_ERROR_INVALID_VALUE;
    int single;
    const void *image = loadable_image(fatCubin, &single);
    if (image == NULL) return CUDA_ERROR_INVALID_IMAGE;
    return load_image(module, image, single);
}

CUresult cuKernelGetParamInfo(CUkernel kernel, size_t paramIndex, size_t *paramOffset, size_t *paramSize) {
    return cuFuncGetParamInfo((CUfunction)kernel, paramIndex, paramOffset, paramSize);
}

CUresult cuKernelGetName(const char **name, CUkernel hfunc) { return cuFuncGetName(name, (CUfunction)hfunc); }

CUresult cuKernelSetCacheConfig(CUkernel kernel, CUfunc_cache config, CUdevice dev) {
    (void)dev;
    return cuFuncSetCacheConfig((CUfunction)kernel, config);
}

CUresult cuLibraryGetKernelCount(unsigned int *count, CUlibrary lib) {
    CUmodule module = library_module(lib);
    if (module == NULL) return CUDA_ERROR_INVALID_HANDLE;
    return cuModuleGetFunctionCount(count, module);
}

CUresult cuLibraryEnumerateKernels(CUkernel *kernels, unsigned int numKernels, CUlibrary lib) {
    CUmodule module = library_module(lib);
    if (module == NULL) return CUDA_ERROR_INVALID_HANDLE;
    return cuModuleEnumerateFunctions((CUfunction *)kernels, numKernels, module);
}
