/*
 * Driver calls the runtime needs, written in terms of calls the library serves: the CUDA 7 names
 * of three primary-context calls (cuGetProcAddress with version 7000 names these first versions),
 * the module loading mode, event records with flags, pinned host allocation with flags, host
 * memory registration, stream priorities, a stream's wait for an event, host work in stream order,
 * occupancy, limits and cuLaunchKernelEx.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "CXPURuntimeSupport.h"

CUresult cuDevicePrimaryCtxRelease(CUdevice dev) { return cuDevicePrimaryCtxRelease_v2(dev); }

CUresult cuDevicePrimaryCtxReset(CUdevice dev) { return cuDevicePrimaryCtxReset_v2(dev); }

CUresult cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags) { return cuDevicePrimaryCtxSetFlags_v2(dev, flags); }

/*
 * The loading mode the runtime follows, from CUDA_MODULE_LOADING as a real driver reads it: lazy
 * unless it says EAGER. Lazy, the runtime loads a registered fatbinary (cuLibraryLoadData) when
 * one of its kernels is first used instead of every fatbinary at start-up: a framework that
 * registers hundreds (PyTorch) starts without sending them to the server, and one built for other
 * architectures starts and reports "no kernel image is available" when it launches a kernel, as
 * on a GPU its wheel does not support. The library itself loads modules whole either way.
 */
CUresult cuModuleGetLoadingMode(CUmoduleLoadingMode *mode) {
    if (mode == NULL) return CUDA_ERROR_INVALID_VALUE;
    const char *setting = getenv("CUDA_MODULE_LOADING");
    *mode = setting != NULL && strcmp(setting, "EAGER") == 0 ? CU_MODULE_EAGER_LOADING : CU_MODULE_LAZY_LOADING;
    return CUDA_SUCCESS;
}

/* Outside stream capture (nothing captures here) an external record is an ordinary one. */
static CUresult record_flags_valid(unsigned int flags) {
    return (flags & ~CU_EVENT_RECORD_EXTERNAL) == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags) {
    CUresult valid = record_flags_valid(flags);
    return valid == CUDA_SUCCESS ? cuEventRecord(hEvent, hStream) : valid;
}

CUresult cuEventRecordWithFlags_ptsz(CUevent hEvent, CUstream hStream, unsigned int flags) {
    CUresult valid = record_flags_valid(flags);
    return valid == CUDA_SUCCESS ? cuEventRecord_ptsz(hEvent, hStream) : valid;
}

#define HOST_ALLOC_PORTABLE 0x01u
#define HOST_ALLOC_DEVICEMAP 0x02u
#define HOST_ALLOC_WRITECOMBINED 0x04u

/*
 * Page-locked host memory (what cudaMallocHost and cudaHostAlloc ask for): portable and
 * write-combined memory are what cuMemAllocHost gives; memory mapped into the device's address
 * space is a coherent range (coherent.c).
 */
CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags) {
    if (Flags & ~(HOST_ALLOC_PORTABLE | HOST_ALLOC_DEVICEMAP | HOST_ALLOC_WRITECOMBINED)) return CUDA_ERROR_INVALID_VALUE;
    if (Flags & HOST_ALLOC_DEVICEMAP) return xpu_coherent_host_alloc(pp, bytesize, Flags);
    return cuMemAllocHost_v2(pp, bytesize);
}

#define HOST_REGISTER_PORTABLE 0x01u
#define HOST_REGISTER_DEVICEMAP 0x02u
#define HOST_REGISTER_IOMEMORY 0x04u
#define HOST_REGISTER_READ_ONLY 0x08u

/*
 * Registered host memory: the ranges are recorded, so registering twice and unregistering what
 * was never registered fail as on a real driver. Copies from and to host memory need no page
 * locking here (the library copies it into its own buffers), so nothing else changes. A range
 * mapped into the device's address space is also a coherent range (coherent.c); I/O memory is
 * not served.
 */
struct host_range {
    uintptr_t start, end;
    struct host_range *next;
};

static pthread_mutex_t host_range_lock = PTHREAD_MUTEX_INITIALIZER;
static struct host_range *host_ranges;

static CUresult host_register(void *p, size_t bytesize, unsigned int Flags) {
    if (p == NULL || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
    if (Flags & ~(HOST_REGISTER_PORTABLE | HOST_REGISTER_DEVICEMAP | HOST_REGISTER_IOMEMORY | HOST_REGISTER_READ_ONLY))
        return CUDA_ERROR_INVALID_VALUE;
    if (Flags & HOST_REGISTER_IOMEMORY) return CUDA_ERROR_NOT_SUPPORTED;
    CUcontext current = NULL;
    CUresult result = cuCtxGetCurrent(&current);
    if (result != CUDA_SUCCESS) return result;
    if (current == NULL) return CUDA_ERROR_INVALID_CONTEXT;
    uintptr_t start = (uintptr_t)p;
    if (bytesize > UINTPTR_MAX - start) return CUDA_ERROR_INVALID_VALUE;
    struct host_range *range = malloc(sizeof *range);
    if (range == NULL) return CUDA_ERROR_OUT_OF_MEMORY;
    *range = (struct host_range){start, start + bytesize, NULL};
    pthread_mutex_lock(&host_range_lock);
    for (struct host_range *r = host_ranges; r != NULL; r = r->next) {
        if (r->start < range->end && range->start < r->end) {
            pthread_mutex_unlock(&host_range_lock);
            free(range);
            return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
        }
    }
    range->next = host_ranges;
    host_ranges = range;
    pthread_mutex_unlock(&host_range_lock);
    if (Flags & HOST_REGISTER_DEVICEMAP) {
        CUresult mapped = xpu_coherent_register(p, bytesize, Flags);
        if (mapped != CUDA_SUCCESS) {
            cuMemHostUnregister(p);
            return mapped;
        }
    }
    return CUDA_SUCCESS;
}

CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags) { return host_register(p, bytesize, Flags); }

CUresult cuMemHostRegister(void *p, size_t bytesize, unsigned int Flags) { return host_register(p, bytesize, Flags); }

/* `p` must be the start of a registered range. */
CUresult cuMemHostUnregister(void *p) {
    if (p == NULL) return CUDA_ERROR_INVALID_VALUE;
    struct host_range *found = NULL;
    pthread_mutex_lock(&host_range_lock);
    for (struct host_range **link = &host_ranges; *link != NULL; link = &(*link)->next) {
        if ((*link)->start == (uintptr_t)p) {
            found = *link;
            *link = found->next;
            break;
        }
    }
    pthread_mutex_unlock(&host_range_lock);
    if (found == NULL) return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
    free(found);
    xpu_coherent_unregister(p);  /* its device side, when it was mapped */
    return CUDA_SUCCESS;
}

/* Priorities are accepted and all run alike: the range is the usual one of real devices. */
CUresult cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority) {
    CUcontext current = NULL;
    CUresult result = cuCtxGetCurrent(&current);
    if (result != CUDA_SUCCESS) return result;
    if (current == NULL) return CUDA_ERROR_INVALID_CONTEXT;
    if (leastPriority != NULL) *leastPriority = 0;
    if (greatestPriority != NULL) *greatestPriority = -5;
    return CUDA_SUCCESS;
}

CUresult cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority) {
    (void)priority;
    return cuStreamCreate(phStream, flags);
}

/*
 * Work queued on the stream after this call runs after the event's work: the calling thread waits
 * for the event here, so everything it queues next is queued after the event completed. Stronger
 * than CUDA's ordering (the host waits too), never weaker.
 */
static CUresult wait_event(CUstream hStream, CUevent hEvent, unsigned int Flags) {
    (void)hStream;
    if (Flags != 0 && Flags != 1 /* CU_EVENT_WAIT_EXTERNAL */) return CUDA_ERROR_INVALID_VALUE;
    return cuEventSynchronize(hEvent);
}

CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags) { return wait_event(hStream, hEvent, Flags); }

CUresult cuStreamWaitEvent_ptsz(CUstream hStream, CUevent hEvent, unsigned int Flags) { return wait_event(hStream, hEvent, Flags); }

/* Cache preferences shape the split of on-chip memory, which a simulated device does not have. */
CUresult cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache config) {
    if ((unsigned)config > CU_FUNC_CACHE_PREFER_EQUAL) return CUDA_ERROR_INVALID_VALUE;
    int ignored;
    return cuFuncGetAttribute(&ignored, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, hfunc);
}

/*
 * Sharing memory and events with another process (CUDA IPC) is not served: a session's memory
 * belongs to it alone (proto/SECURITY.md). The calls exist, so that cuGetProcAddress finds them
 * and a program learns so from CUDA_ERROR_NOT_SUPPORTED rather than from a missing symbol.
 */
CUresult cuIpcGetMemHandle(CUipcMemHandle *pHandle, CUdeviceptr dptr) {
    (void)dptr;
    return pHandle == NULL ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_SUPPORTED;
}

CUresult cuIpcOpenMemHandle_v2(CUdeviceptr *pdptr, CUipcMemHandle handle, unsigned int Flags) {
    (void)handle, (void)Flags;
    return pdptr == NULL ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_SUPPORTED;
}

CUresult cuIpcCloseMemHandle(CUdeviceptr dptr) {
    (void)dptr;
    return CUDA_ERROR_NOT_SUPPORTED;
}

CUresult cuIpcGetEventHandle(CUipcEventHandle *pHandle, CUevent event) {
    (void)event;
    return pHandle == NULL ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_SUPPORTED;
}

CUresult cuIpcOpenEventHandle(CUevent *phEvent, CUipcEventHandle handle) {
    (void)handle;
    return phEvent == NULL ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_SUPPORTED;
}

/*
 * Function attributes a program may set: the dynamic shared memory limit, the shared memory
 * carveout (a hint) and the other hints are accepted for a valid function and change nothing the
 * simulated device does; the read-only attributes are refused.
 */
CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value) {
    if (attrib < CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES || (int)attrib > 16 /* NON_PORTABLE_CLUSTER_SIZE_ALLOWED */)
        return CUDA_ERROR_INVALID_VALUE;
    /* A carveout is a percentage, or -1 for no preference. */
    int least = attrib == CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT ? -1 : 0;
    if (value < least || (attrib == CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT && value > 100)) return CUDA_ERROR_INVALID_VALUE;
    int ignored;
    return cuFuncGetAttribute(&ignored, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, hfunc);
}

/* A kernel is its module's function here (library.c): its attributes are the function's. */
CUresult cuKernelSetAttribute(CUfunction_attribute attrib, int val, CUkernel kernel, CUdevice dev) {
    (void)dev;
    CUfunction function = NULL;
    CUresult result = cuKernelGetFunction(&function, kernel);
    return result == CUDA_SUCCESS ? cuFuncSetAttribute(function, attrib, val) : result;
}

/*
 * Resident blocks per multiprocessor from the device's limits and the kernel's needs: blocks,
 * threads (in whole warps), registers and shared memory per multiprocessor, as CUDA's occupancy
 * calculator counts them (without its allocation granularities).
 */
CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *numBlocks, CUfunction func, int blockSize,
                                                              size_t dynamicSMemSize, unsigned int flags) {
    if (numBlocks == NULL || blockSize <= 0 || flags > 1) return CUDA_ERROR_INVALID_VALUE;
    CUdevice device;
    CUresult result = cuCtxGetDevice(&device);
    int maxBlocks = 0, maxThreads = 0, registers = 0, shared = 0, kernelRegisters = 0, kernelShared = 0, kernelThreads = 0;
    if (result == CUDA_SUCCESS) result = cuDeviceGetAttribute(&maxBlocks, CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR, device);
    if (result == CUDA_SUCCESS) result = cuDeviceGetAttribute(&maxThreads, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, device);
    if (result == CUDA_SUCCESS) result = cuDeviceGetAttribute(&registers, CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR, device);
    if (result == CUDA_SUCCESS) result = cuDeviceGetAttribute(&shared, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, device);
    if (result == CUDA_SUCCESS) result = cuFuncGetAttribute(&kernelThreads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, func);
    if (result == CUDA_SUCCESS) result = cuFuncGetAttribute(&kernelRegisters, CU_FUNC_ATTRIBUTE_NUM_REGS, func);
    if (result == CUDA_SUCCESS) result = cuFuncGetAttribute(&kernelShared, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, func);
    if (result != CUDA_SUCCESS) return result;
    if (blockSize > kernelThreads) {
        *numBlocks = 0;
        return CUDA_SUCCESS;
    }
    int warps = (blockSize + 31) / 32;
    int blocks = maxBlocks;
    if (maxThreads / (warps * 32) < blocks) blocks = maxThreads / (warps * 32);
    if (kernelRegisters > 0 && registers / (kernelRegisters * warps * 32) < blocks) blocks = registers / (kernelRegisters * warps * 32);
    size_t perBlock = (size_t)kernelShared + dynamicSMemSize;
    if (perBlock > 0 && (size_t)shared / perBlock < (size_t)blocks) blocks = (int)((size_t)shared / perBlock);
    *numBlocks = blocks;
    return CUDA_SUCCESS;
}

CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func, int blockSize, size_t dynamicSMemSize) {
    return cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(numBlocks, func, blockSize, dynamicSMemSize, 0);
}

/*
 * Host functions and stream callbacks run on the calling thread once the stream's earlier work is
 * done, before the call returns: in stream order (later work is queued only after), on the client.
 */
static CUresult run_host_function(CUstream stream, CUhostFn fn, void *userData, int perThread) {
    if (fn == NULL) return CUDA_ERROR_INVALID_VALUE;
    CUresult result = perThread ? cuStreamSynchronize_ptsz(stream) : cuStreamSynchronize(stream);
    if (result != CUDA_SUCCESS) return result;
    fn(userData);
    return CUDA_SUCCESS;
}

CUresult cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData) { return run_host_function(hStream, fn, userData, 0); }

CUresult cuLaunchHostFunc_ptsz(CUstream hStream, CUhostFn fn, void *userData) {
    return run_host_function(hStream, fn, userData, 1);
}

/* The callback learns the stream's status: an earlier failure is passed to it, not returned. */
static CUresult run_stream_callback(CUstream stream, CUstreamCallback callback, void *userData, unsigned int flags,
                                    int perThread) {
    if (callback == NULL || flags != 0) return CUDA_ERROR_INVALID_VALUE;
    CUresult status = perThread ? cuStreamSynchronize_ptsz(stream) : cuStreamSynchronize(stream);
    if (status == CUDA_ERROR_INVALID_HANDLE || status == CUDA_ERROR_INVALID_CONTEXT || status == CUDA_ERROR_NOT_INITIALIZED)
        return status;
    callback(stream, status, userData);
    return CUDA_SUCCESS;
}

CUresult cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData, unsigned int flags) {
    return run_stream_callback(hStream, callback, userData, flags, 0);
}

CUresult cuStreamAddCallback_ptsz(CUstream hStream, CUstreamCallback callback, void *userData, unsigned int flags) {
    return run_stream_callback(hStream, callback, userData, flags, 1);
}

/* Limits of the process (a real driver keeps them per context), with a real device's defaults. */
static size_t limits[7] = {1024, 1 << 20, 8 << 20, 2, 2048, 0, 0};

CUresult cuCtxGetLimit(size_t *pvalue, CUlimit limit) {
    if (pvalue == NULL || (unsigned)limit >= sizeof limits / sizeof limits[0]) return CUDA_ERROR_INVALID_VALUE;
    CUcontext current = NULL;
    CUresult result = cuCtxGetCurrent(&current);
    if (result != CUDA_SUCCESS) return result;
    if (current == NULL) return CUDA_ERROR_INVALID_CONTEXT;
    *pvalue = __atomic_load_n(&limits[limit], __ATOMIC_RELAXED);
    return CUDA_SUCCESS;
}

CUresult cuCtxSetLimit(CUlimit limit, size_t value) {
    if ((unsigned)limit >= sizeof limits / sizeof limits[0]) return CUDA_ERROR_INVALID_VALUE;
    CUcontext current = NULL;
    CUresult result = cuCtxGetCurrent(&current);
    if (result != CUDA_SUCCESS) return result;
    if (current == NULL) return CUDA_ERROR_INVALID_CONTEXT;
    __atomic_store_n(&limits[limit], value, __ATOMIC_RELAXED);
    return CUDA_SUCCESS;
}

/* Contexts are created with the default scheduling flags. */
CUresult cuCtxGetFlags(unsigned int *flags) {
    if (flags == NULL) return CUDA_ERROR_INVALID_VALUE;
    CUcontext current = NULL;
    CUresult result = cuCtxGetCurrent(&current);
    if (result != CUDA_SUCCESS) return result;
    if (current == NULL) return CUDA_ERROR_INVALID_CONTEXT;
    *flags = 0;
    return CUDA_SUCCESS;
}

/* The API version of contexts created through this driver's current API (3020 and later). */
CUresult cuCtxGetApiVersion(CUcontext ctx, unsigned int *version) {
    if (version == NULL) return CUDA_ERROR_INVALID_VALUE;
    if (ctx == NULL) {
        CUresult result = cuCtxGetCurrent(&ctx);
        if (result != CUDA_SUCCESS) return result;
        if (ctx == NULL) return CUDA_ERROR_INVALID_CONTEXT;
    }
    *version = 3020;
    return CUDA_SUCCESS;
}

/* The allocation holding `dptr`, from the pointer's range attributes. */
CUresult cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr) {
    CUdeviceptr base = 0;
    size_t size = 0;
    CUresult result = cuPointerGetAttribute(&base, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, dptr);
    if (result == CUDA_SUCCESS) result = cuPointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_RANGE_SIZE, dptr);
    if (result != CUDA_SUCCESS) return result;
    if (pbase != NULL) *pbase = base;
    if (psize != NULL) *psize = size;
    return CUDA_SUCCESS;
}

/* "domain:bus:device.0" from the PCI attributes, as the driver formats it. */
CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev) {
    if (pciBusId == NULL || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    int domain = 0, bus = 0, device = 0;
    CUresult result = cuDeviceGetAttribute(&domain, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, dev);
    if (result == CUDA_SUCCESS) result = cuDeviceGetAttribute(&bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, dev);
    if (result == CUDA_SUCCESS) result = cuDeviceGetAttribute(&device, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, dev);
    if (result != CUDA_SUCCESS) return result;
    snprintf(pciBusId, (size_t)len, "%08X:%02X:%02X.0", (unsigned)domain, (unsigned)bus, (unsigned)device);
    return CUDA_SUCCESS;
}

/*
 * cuLaunchKernelEx as cuLaunchKernel: attributes that are hints (access policy, synchronization
 * policy, priority, memory synchronization domains, programmatic serialization, preferred
 * clusters) are accepted and have no effect here; cooperative launches, clusters of more than one
 * block, and attributes that promise an event are refused with CUDA_ERROR_NOT_SUPPORTED.
 */
static CUresult launch_ex(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra, int perThread) {
    if (config == NULL || (config->numAttrs > 0 && config->attrs == NULL)) return CUDA_ERROR_INVALID_VALUE;
    for (unsigned int i = 0; i < config->numAttrs; i++) {
        const CUlaunchAttribute *attribute = &config->attrs[i];
        switch (attribute->id) {
        case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
            if (attribute->value.cooperative != 0) return CUDA_ERROR_NOT_SUPPORTED;
            break;
        case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION: {
            unsigned int dimensions[3];
            memcpy(dimensions, attribute->value.pad, sizeof dimensions);
            if (dimensions[0] > 1 || dimensions[1] > 1 || dimensions[2] > 1) return CUDA_ERROR_NOT_SUPPORTED;
            break;
        }
        case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT:
        case CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT:
        case CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE:
            return CUDA_ERROR_NOT_SUPPORTED;
        default:
            break;
        }
    }
    return (perThread ? cuLaunchKernel_ptsz : cuLaunchKernel)(f, config->gridDimX, config->gridDimY, config->gridDimZ,
                                                             config->blockDimX, config->blockDimY, config->blockDimZ,
                                                             config->sharedMemBytes, config->hStream, kernelParams, extra);
}

CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra) {
    return launch_ex(config, f, kernelParams, extra, 0);
}

CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra) {
    return launch_ex(config, f, kernelParams, extra, 1);
}
