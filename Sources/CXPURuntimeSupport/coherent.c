/*
 * Managed memory (cuMemAllocManaged) and mapped host memory (cuMemHostAlloc and
 * cuMemHostRegister with DEVICEMAP), emulated in terms of device memory and copies, so that the
 * same code serves them direct on the simulated device and through a server whose device cannot
 * reach the client's memory. The model and its limits: docs/coherent-memory.md.
 *
 * Each coherent range is host memory paired with a device allocation of the same size, plus a
 * shadow: the host's idea of what the device holds. Before device work that may read the range
 * (a launch, a copy) the pages where the host differs from the shadow are pushed to the device;
 * after a synchronization (context, stream, event, a synchronous copy) the device's contents are
 * pulled and merged page by page: a page the device changed since the shadow replaces the host's
 * page; a page only the host changed stays (it is pushed before the next work). A page both
 * changed between two synchronizations keeps the device's contents.
 *
 * Managed memory has one address: the device allocation is page-aligned and the host buffer is
 * mapped at the same address (mmap MAP_FIXED_NOREPLACE). Mapped host memory from cuMemHostAlloc
 * gets the same treatment when it can, else a host buffer elsewhere (cuMemHostGetDevicePointer
 * names the device side); registered memory keeps the program's address.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "CXPURuntimeSupport.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define PAGE 4096u
/* Pages are pulled in chunks of this many bytes, so a pull needs no second copy of a range. */
#define PULL_CHUNK (1u << 20)
/* Device allocations tried (and held) while looking for one whose address the host can map. */
#define PLACEMENT_TRIES 32

enum coherent_kind { KIND_MANAGED, KIND_HOST_ALLOC, KIND_REGISTERED };

struct coherent_range {
    enum coherent_kind kind;
    unsigned char *host;
    CUdeviceptr device;
    size_t size;
    unsigned int flags;     /* the flags it was made with (cuMemHostGetFlags, attach flags) */
    int mapped_at_device;   /* the host buffer is an mmap at the device address */
    CUcontext context;
    unsigned char *shadow;  /* what the device held at the last push or pull */
    struct coherent_range *next;
};

static pthread_mutex_t coherent_lock = PTHREAD_MUTEX_INITIALIZER;
static struct coherent_range *ranges;
static int range_count;  /* read without the lock: a launch with no coherent memory costs one load */
static __thread int inside_coherence;

/*
 * Device addresses of managed ranges freed with cuMemFree, not yet forgotten: the shim learns of
 * a free while it holds a connection's lock, and a push may hold coherent_lock while it waits for
 * that lock, so the free only queues the address here (freed_lock is never held while calling
 * the driver) and the next push, pull or allocation forgets the range.
 */
static pthread_mutex_t freed_lock = PTHREAD_MUTEX_INITIALIZER;
static CUdeviceptr *freed;
static size_t freed_count, freed_capacity;

static size_t round_page(size_t n) { return (n + PAGE - 1) / PAGE * PAGE; }

/* Makes `ctx` current for the copies of one range; returns whether it pushed a context. */
static int enter_context(CUcontext ctx) {
    CUcontext current = NULL;
    if (cuCtxGetCurrent(&current) == CUDA_SUCCESS && current == ctx) return 0;
    return cuCtxPushCurrent_v2(ctx) == CUDA_SUCCESS;
}

static void leave_context(int pushed) {
    CUcontext ignored;
    if (pushed) cuCtxPopCurrent_v2(&ignored);
}

static void drop_host_side(struct coherent_range *r);

/* Forgets the managed ranges whose device memory was freed; call with coherent_lock held. */
static void drain_freed(void) {
    pthread_mutex_lock(&freed_lock);
    CUdeviceptr *addresses = freed;
    size_t count = freed_count;
    freed = NULL;
    freed_count = freed_capacity = 0;
    pthread_mutex_unlock(&freed_lock);
    for (size_t i = 0; i < count; i++) {
        for (struct coherent_range **link = &ranges; *link != NULL; link = &(*link)->next) {
            struct coherent_range *r = *link;
            if (r->kind == KIND_MANAGED && r->device == addresses[i]) {
                *link = r->next;
                __atomic_sub_fetch(&range_count, 1, __ATOMIC_RELEASE);
                drop_host_side(r);
                break;
            }
        }
    }
    free(addresses);
}

static void push_range(struct coherent_range *r) {
    size_t pages = (r->size + PAGE - 1) / PAGE;
    int pushed = -1;
    for (size_t p = 0; p < pages;) {
        size_t at = p * PAGE, len = r->size - at < PAGE ? r->size - at : PAGE;
        if (memcmp(r->host + at, r->shadow + at, len) == 0) {
            p++;
            continue;
        }
        /* A run of changed pages goes in one copy. */
        size_t end = p + 1;
        while (end < pages) {
            size_t e = end * PAGE, elen = r->size - e < PAGE ? r->size - e : PAGE;
            if (memcmp(r->host + e, r->shadow + e, elen) == 0) break;
            end++;
        }
        size_t bytes = (end * PAGE < r->size ? end * PAGE : r->size) - at;
        if (pushed < 0) pushed = enter_context(r->context);
        if (cuMemcpyHtoD_v2(r->device + at, r->host + at, bytes) == CUDA_SUCCESS) memcpy(r->shadow + at, r->host + at, bytes);
        p = end;
    }
    if (pushed >= 0) leave_context(pushed);
}

static void pull_range(struct coherent_range *r, unsigned char *chunk) {
    int pushed = enter_context(r->context);
    for (size_t at = 0; at < r->size; at += PULL_CHUNK) {
        size_t bytes = r->size - at < PULL_CHUNK ? r->size - at : PULL_CHUNK;
        if (cuMemcpyDtoH_v2(chunk, r->device + at, bytes) != CUDA_SUCCESS) break;
        for (size_t off = 0; off < bytes; off += PAGE) {
            size_t len = bytes - off < PAGE ? bytes - off : PAGE;
            if (memcmp(chunk + off, r->shadow + at + off, len) == 0) continue;  /* the device left it */
            memcpy(r->host + at + off, chunk + off, len);
            memcpy(r->shadow + at + off, chunk + off, len);
        }
    }
    leave_context(pushed);
}

void xpu_coherent_push(void) {
    if (__atomic_load_n(&range_count, __ATOMIC_ACQUIRE) == 0 || inside_coherence) return;
    inside_coherence = 1;
    pthread_mutex_lock(&coherent_lock);
    drain_freed();
    for (struct coherent_range *r = ranges; r != NULL; r = r->next) push_range(r);
    pthread_mutex_unlock(&coherent_lock);
    inside_coherence = 0;
}

void xpu_coherent_pull(void) {
    if (__atomic_load_n(&range_count, __ATOMIC_ACQUIRE) == 0 || inside_coherence) return;
    unsigned char *chunk = malloc(PULL_CHUNK);
    if (chunk == NULL) return;
    inside_coherence = 1;
    pthread_mutex_lock(&coherent_lock);
    drain_freed();
    for (struct coherent_range *r = ranges; r != NULL; r = r->next) pull_range(r, chunk);
    pthread_mutex_unlock(&coherent_lock);
    inside_coherence = 0;
    free(chunk);
}

static void add_range(struct coherent_range *r) {
    pthread_mutex_lock(&coherent_lock);
    drain_freed();
    r->next = ranges;
    ranges = r;
    __atomic_add_fetch(&range_count, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&coherent_lock);
}

/* Unlinks the range that `match` picks; the caller owns it then. */
static struct coherent_range *take_range(int (*match)(const struct coherent_range *, uintptr_t), uintptr_t key) {
    pthread_mutex_lock(&coherent_lock);
    struct coherent_range *found = NULL;
    for (struct coherent_range **link = &ranges; *link != NULL; link = &(*link)->next) {
        if (match(*link, key)) {
            found = *link;
            *link = found->next;
            __atomic_sub_fetch(&range_count, 1, __ATOMIC_RELEASE);
            break;
        }
    }
    pthread_mutex_unlock(&coherent_lock);
    return found;
}

static void drop_host_side(struct coherent_range *r) {
    if (r->mapped_at_device) munmap(r->host, round_page(r->size));
    else if (r->kind == KIND_HOST_ALLOC) free(r->host);
    free(r->shadow);
    free(r);
}

/*
 * A device allocation of `size` bytes whose address the host can map, with the host buffer
 * mapped there. Device allocators align to less than a page (the simulated device: 512 bytes), so
 * a misaligned answer is given back and a filler of the gap allocated in its place (allocators
 * fit first); an aligned address the host already uses is held and another tried. What was held
 * is freed before returning. CUDA_ERROR_NOT_FOUND when no try gave a mappable address.
 */
static CUresult place_at_device_address(size_t size, CUdeviceptr *device, void **host) {
    CUdeviceptr held[PLACEMENT_TRIES];
    int held_count = 0;
    CUresult result = CUDA_ERROR_NOT_FOUND;
    size_t mapped = round_page(size);
    for (int attempt = 0; attempt < PLACEMENT_TRIES; attempt++) {
        CUdeviceptr d = 0;
        result = cuMemAlloc_v2(&d, mapped);
        if (result != CUDA_SUCCESS) break;
        if (d % PAGE != 0) {
            size_t gap = PAGE - d % PAGE;
            cuMemFree_v2(d);
            CUdeviceptr filler = 0;
            if (cuMemAlloc_v2(&filler, gap) == CUDA_SUCCESS) held[held_count++] = filler;
            result = CUDA_ERROR_NOT_FOUND;
            continue;
        }
        void *p = mmap((void *)(uintptr_t)d, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                       -1, 0);
        if (p == (void *)(uintptr_t)d) {
            *device = d;
            *host = p;
            result = CUDA_SUCCESS;
            break;
        }
        /* Kernels before 4.17 ignore the flag and map elsewhere: give that mapping back. */
        if (p != MAP_FAILED) munmap(p, mapped);
        held[held_count++] = d;
        result = CUDA_ERROR_NOT_FOUND;
    }
    for (int i = 0; i < held_count; i++) cuMemFree_v2(held[i]);
    return result;
}

static CUresult current_context(CUcontext *ctx) {
    CUresult result = cuCtxGetCurrent(ctx);
    if (result == CUDA_SUCCESS && *ctx == NULL) result = CUDA_ERROR_INVALID_CONTEXT;
    return result;
}

static struct coherent_range *new_range(enum coherent_kind kind, size_t size, unsigned int flags, CUcontext ctx) {
    /* A range freed but not yet forgotten still holds its host mapping: forget it first. */
    pthread_mutex_lock(&coherent_lock);
    drain_freed();
    pthread_mutex_unlock(&coherent_lock);
    struct coherent_range *r = calloc(1, sizeof *r);
    if (r == NULL) return NULL;
    r->shadow = calloc(1, size);
    if (r->shadow == NULL) {
        free(r);
        return NULL;
    }
    r->kind = kind;
    r->size = size;
    r->flags = flags;
    r->context = ctx;
    return r;
}

#define MEM_ATTACH_GLOBAL 0x1u
#define MEM_ATTACH_HOST 0x2u
#define MEM_ATTACH_SINGLE 0x4u

/*
 * Managed memory: zero-filled, at one address for host and device. Attached globally or to the
 * host alike (every range is synchronized at every synchronization). CUDA_ERROR_OUT_OF_MEMORY
 * when no device address could be mapped on the host.
 */
CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags) {
    if (dptr == NULL || bytesize == 0 || (flags != MEM_ATTACH_GLOBAL && flags != MEM_ATTACH_HOST)) return CUDA_ERROR_INVALID_VALUE;
    CUcontext ctx;
    CUresult result = current_context(&ctx);
    if (result != CUDA_SUCCESS) return result;
    struct coherent_range *r = new_range(KIND_MANAGED, bytesize, flags, ctx);
    if (r == NULL) return CUDA_ERROR_OUT_OF_MEMORY;
    void *host = NULL;
    result = place_at_device_address(bytesize, &r->device, &host);
    if (result != CUDA_SUCCESS) {
        free(r->shadow);
        free(r);
        return result == CUDA_ERROR_NOT_FOUND ? CUDA_ERROR_OUT_OF_MEMORY : result;
    }
    r->host = host;
    r->mapped_at_device = 1;
    /* Both sides start zero-filled: the device's copy is made so. */
    result = cuMemsetD8_v2(r->device, 0, bytesize);
    if (result != CUDA_SUCCESS) {
        munmap(host, round_page(bytesize));
        cuMemFree_v2(r->device);
        free(r->shadow);
        free(r);
        return result;
    }
    add_range(r);
    *dptr = r->device;
    return CUDA_SUCCESS;
}

/* Mapped page-locked host memory for cuMemHostAlloc(DEVICEMAP); `flags` as given. */
CUresult xpu_coherent_host_alloc(void **pp, size_t bytesize, unsigned int flags) {
    if (pp == NULL || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
    CUcontext ctx;
    CUresult result = current_context(&ctx);
    if (result != CUDA_SUCCESS) return result;
    struct coherent_range *r = new_range(KIND_HOST_ALLOC, bytesize, flags, ctx);
    if (r == NULL) return CUDA_ERROR_OUT_OF_MEMORY;
    void *host = NULL;
    result = place_at_device_address(bytesize, &r->device, &host);
    if (result == CUDA_SUCCESS) {
        r->mapped_at_device = 1;
    } else if (result == CUDA_ERROR_NOT_FOUND) {
        /* No shared address: the device side is named by cuMemHostGetDevicePointer. */
        result = cuMemAlloc_v2(&r->device, bytesize);
        if (result == CUDA_SUCCESS && posix_memalign(&host, PAGE, bytesize) != 0) {
            cuMemFree_v2(r->device);
            result = CUDA_ERROR_OUT_OF_MEMORY;
        }
        if (host != NULL) memset(host, 0, bytesize);
    }
    if (result == CUDA_SUCCESS) result = cuMemsetD8_v2(r->device, 0, bytesize);
    if (result != CUDA_SUCCESS) {
        if (host != NULL) {
            r->host = host;
            cuMemFree_v2(r->device);
            drop_host_side(r);
        } else {
            free(r->shadow);
            free(r);
        }
        return result;
    }
    r->host = host;
    add_range(r);
    *pp = host;
    return CUDA_SUCCESS;
}

/* Registered host memory mapped for the device (cuMemHostRegister with DEVICEMAP). */
CUresult xpu_coherent_register(void *p, size_t bytesize, unsigned int flags) {
    CUcontext ctx;
    CUresult result = current_context(&ctx);
    if (result != CUDA_SUCCESS) return result;
    struct coherent_range *r = new_range(KIND_REGISTERED, bytesize, flags, ctx);
    if (r == NULL) return CUDA_ERROR_OUT_OF_MEMORY;
    r->host = p;
    result = cuMemAlloc_v2(&r->device, bytesize);
    /* The shadow starts as zeros and the device's copy is not: the first push sends every page
     * that is not zero, so the device starts equal to the host. */
    if (result == CUDA_SUCCESS) result = cuMemsetD8_v2(r->device, 0, bytesize);
    if (result != CUDA_SUCCESS) {
        if (r->device != 0) cuMemFree_v2(r->device);
        free(r->shadow);
        free(r);
        return result;
    }
    add_range(r);
    return CUDA_SUCCESS;
}

static int host_starts(const struct coherent_range *r, uintptr_t key) {
    return r->kind != KIND_MANAGED && (uintptr_t)r->host == key;
}

/* Frees mapped host memory from cuMemHostAlloc; CUDA_ERROR_NOT_FOUND if `p` is not one. */
CUresult xpu_coherent_free_host(void *p) {
    struct coherent_range *r = take_range(host_starts, (uintptr_t)p);
    if (r == NULL) return CUDA_ERROR_NOT_FOUND;
    if (r->kind == KIND_REGISTERED) {  /* not cuMemHostAlloc memory: put it back */
        add_range(r);
        return CUDA_ERROR_NOT_FOUND;
    }
    CUdeviceptr device = r->device;
    CUcontext ctx = r->context;
    drop_host_side(r);
    int pushed = enter_context(ctx);
    CUresult result = cuMemFree_v2(device);
    leave_context(pushed);
    return result;
}

/* Forgets a registration with DEVICEMAP and frees its device side; CUDA_ERROR_NOT_FOUND if none. */
CUresult xpu_coherent_unregister(void *p) {
    struct coherent_range *r = take_range(host_starts, (uintptr_t)p);
    if (r == NULL) return CUDA_ERROR_NOT_FOUND;
    CUdeviceptr device = r->device;
    CUcontext ctx = r->context;
    drop_host_side(r);
    int pushed = enter_context(ctx);
    CUresult result = cuMemFree_v2(device);
    leave_context(pushed);
    return result;
}

/*
 * Called once the device allocation at `dptr` was freed (cuMemFree): a managed range there loses
 * its host mapping and shadow (at the next push, pull or allocation: see `freed`).
 */
void xpu_coherent_device_freed(CUdeviceptr dptr) {
    if (__atomic_load_n(&range_count, __ATOMIC_ACQUIRE) == 0 || inside_coherence) return;
    pthread_mutex_lock(&freed_lock);
    if (freed_count == freed_capacity) {
        size_t capacity = freed_capacity == 0 ? 16 : freed_capacity * 2;
        CUdeviceptr *grown = realloc(freed, capacity * sizeof *grown);
        if (grown != NULL) {
            freed = grown;
            freed_capacity = capacity;
        }
    }
    if (freed_count < freed_capacity) freed[freed_count++] = dptr;
    pthread_mutex_unlock(&freed_lock);
}

/* A context is going away with its memory: its ranges are forgotten on the host. */
void xpu_coherent_context_destroying(CUcontext ctx) {
    for (;;) {
        pthread_mutex_lock(&coherent_lock);
        struct coherent_range **link = &ranges;
        while (*link != NULL && (*link)->context != ctx) link = &(*link)->next;
        struct coherent_range *r = *link;
        if (r != NULL) {
            *link = r->next;
            __atomic_sub_fetch(&range_count, 1, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&coherent_lock);
        if (r == NULL) return;
        /* Registered memory belongs to the program; the rest is ours to unmap or free. */
        drop_host_side(r);
    }
}

/* The range holding host address `p` (host side), or device address `d`; call with the lock. */
static struct coherent_range *find_host(uintptr_t p) {
    for (struct coherent_range *r = ranges; r != NULL; r = r->next)
        if (p >= (uintptr_t)r->host && p - (uintptr_t)r->host < r->size) return r;
    return NULL;
}

CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int Flags) {
    if (pdptr == NULL || p == NULL || Flags != 0) return CUDA_ERROR_INVALID_VALUE;
    CUcontext ctx;
    CUresult result = current_context(&ctx);
    if (result != CUDA_SUCCESS) return result;
    pthread_mutex_lock(&coherent_lock);
    struct coherent_range *r = find_host((uintptr_t)p);
    if (r != NULL) *pdptr = r->device + ((uintptr_t)p - (uintptr_t)r->host);
    pthread_mutex_unlock(&coherent_lock);
    return r != NULL ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuMemHostGetFlags(unsigned int *pFlags, void *p) {
    if (pFlags == NULL || p == NULL) return CUDA_ERROR_INVALID_VALUE;
    CUcontext ctx;
    CUresult result = current_context(&ctx);
    if (result != CUDA_SUCCESS) return result;
    pthread_mutex_lock(&coherent_lock);
    struct coherent_range *r = find_host((uintptr_t)p);
    int found = r != NULL && r->kind == KIND_HOST_ALLOC;
    if (found) *pFlags = r->flags;
    pthread_mutex_unlock(&coherent_lock);
    if (found) return CUDA_SUCCESS;
    /* Page-locked memory from cuMemAllocHost: allocated with no flags. */
    unsigned int type = 0;
    if (cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, (CUdeviceptr)(uintptr_t)p) != CUDA_SUCCESS ||
        type != CU_MEMORYTYPE_HOST)
        return CUDA_ERROR_INVALID_VALUE;
    *pFlags = 0;
    return CUDA_SUCCESS;
}

/* Attaching managed memory to a stream changes nothing here: every range is synchronized at every synchronization. */
CUresult cuStreamAttachMemAsync(CUstream hStream, CUdeviceptr dptr, size_t length, unsigned int flags) {
    (void)hStream;
    if (flags != MEM_ATTACH_GLOBAL && flags != MEM_ATTACH_HOST && flags != MEM_ATTACH_SINGLE) return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&coherent_lock);
    struct coherent_range *r = find_host((uintptr_t)dptr);
    int valid = r != NULL && r->kind == KIND_MANAGED && (length == 0 ? dptr == r->device : length <= r->size - (dptr - r->device));
    pthread_mutex_unlock(&coherent_lock);
    return valid ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* Whether `[dptr, dptr + count)` lies inside one managed range. */
static int inside_managed(CUdeviceptr dptr, size_t count) {
    pthread_mutex_lock(&coherent_lock);
    struct coherent_range *r = find_host((uintptr_t)dptr);
    int inside = r != NULL && r->kind == KIND_MANAGED && count > 0 && count <= r->size - (dptr - r->device);
    pthread_mutex_unlock(&coherent_lock);
    return inside;
}

static int location_valid(CUmemLocation location) {
    if (location.type == CU_MEM_LOCATION_TYPE_DEVICE) {
        int count = 0;
        return cuDeviceGetCount(&count) == CUDA_SUCCESS && location.id >= 0 && location.id < count;
    }
    return location.type >= CU_MEM_LOCATION_TYPE_HOST && location.type <= CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT;
}

/* Advice is a hint about placement: accepted for managed memory, with no effect here. */
CUresult cuMemAdvise_v2(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUmemLocation location) {
    if (advice < CU_MEM_ADVISE_SET_READ_MOSTLY || advice > CU_MEM_ADVISE_UNSET_ACCESSED_BY) return CUDA_ERROR_INVALID_VALUE;
    int needs_location = advice == CU_MEM_ADVISE_SET_PREFERRED_LOCATION || advice == CU_MEM_ADVISE_SET_ACCESSED_BY ||
                         advice == CU_MEM_ADVISE_UNSET_ACCESSED_BY;
    if (needs_location && !location_valid(location)) return CUDA_ERROR_INVALID_VALUE;
    return inside_managed(devPtr, count) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/*
 * A prefetch moves nothing ahead of time: the range is pushed before the next device work and
 * pulled at the next synchronization whatever its location.
 */
CUresult cuMemPrefetchAsync_v2(CUdeviceptr devPtr, size_t count, CUmemLocation location, unsigned int flags, CUstream hStream) {
    (void)hStream;
    if (flags != 0 || !location_valid(location)) return CUDA_ERROR_INVALID_VALUE;
    return inside_managed(devPtr, count) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuMemPrefetchAsync_v2_ptsz(CUdeviceptr devPtr, size_t count, CUmemLocation location, unsigned int flags,
                                    CUstream hStream) {
    return cuMemPrefetchAsync_v2(devPtr, count, location, flags, hStream);
}

/*
 * The attributes a coherent range answers itself at `ptr` (host or device side); for the others
 * `*translated` is the device address to ask the library about (`ptr` when it is no coherent
 * range) and the result is CUDA_ERROR_NOT_FOUND.
 */
CUresult xpu_coherent_pointer_attribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr, CUdeviceptr *translated) {
    *translated = ptr;
    if (__atomic_load_n(&range_count, __ATOMIC_ACQUIRE) == 0) return CUDA_ERROR_NOT_FOUND;
    pthread_mutex_lock(&coherent_lock);
    struct coherent_range *r = find_host((uintptr_t)ptr);
    struct coherent_range copy;
    if (r != NULL) copy = *r;
    pthread_mutex_unlock(&coherent_lock);
    if (r == NULL) return CUDA_ERROR_NOT_FOUND;
    uint64_t offset = ptr - (uintptr_t)copy.host;
    *translated = copy.device + offset;
    if (data == NULL) return CUDA_ERROR_INVALID_VALUE;
    switch (attribute) {
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE: {
        unsigned int type = copy.kind == KIND_MANAGED ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
        memcpy(data, &type, sizeof type);
        return CUDA_SUCCESS;
    }
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: {
        CUdeviceptr device = copy.device + offset;
        memcpy(data, &device, sizeof device);
        return CUDA_SUCCESS;
    }
    case CU_POINTER_ATTRIBUTE_HOST_POINTER: {
        void *host = copy.host + offset;
        memcpy(data, &host, sizeof host);
        return CUDA_SUCCESS;
    }
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
    case CU_POINTER_ATTRIBUTE_MAPPED: {
        unsigned int yes = attribute == CU_POINTER_ATTRIBUTE_MAPPED || copy.kind == KIND_MANAGED;
        memcpy(data, &yes, sizeof yes);
        return CUDA_SUCCESS;
    }
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: {
        CUdeviceptr start = (CUdeviceptr)(uintptr_t)copy.host;
        memcpy(data, &start, sizeof start);
        return CUDA_SUCCESS;
    }
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        memcpy(data, &copy.size, sizeof copy.size);
        return CUDA_SUCCESS;
    default:
        return CUDA_ERROR_NOT_FOUND;
    }
}
