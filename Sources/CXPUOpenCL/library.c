// See include/CXPUOpenCLLibrary.h.
#define _GNU_SOURCE
#include "CXPUOpenCLLibrary.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int xpu_opencl_library_open(const char *path, struct xpu_opencl_library *library, char *error, size_t capacity) {
    memset(library, 0, sizeof *library);
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        snprintf(error, capacity, "%s", dlerror());
        return -1;
    }
#define XPU_OPENCL_LOAD(name) \
    library->name = (__typeof__(&name))dlsym(handle, #name); \
    if (library->name == NULL) { \
        snprintf(error, capacity, "%s has no %s", path, #name); \
        dlclose(handle); \
        return -1; \
    }
    XPU_OPENCL_LIBRARY_FUNCTIONS(XPU_OPENCL_LOAD)
#undef XPU_OPENCL_LOAD
    library->handle = handle;
    return 0;
}
