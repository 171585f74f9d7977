/*
 * CXPURuntimeSupport.h: what the CUDA runtime (cudart, linked statically into every program nvcc
 * builds) asks of a driver beyond cuda.h, answered locally in terms of the driver API that the
 * library linking this target serves: the export tables of cuGetExportTable and the library/kernel
 * loading calls (a library is a module of one context). Linked into both libxpushim.so and
 * libxpusim.so, so a runtime program meets the same answers direct and through a server.
 * The tables, their slots and the sources of these facts: proto/EXPORT-TABLES.md.
 */
#ifndef CXPU_RUNTIME_SUPPORT_H
#define CXPU_RUNTIME_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include "CXPUDriver.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Helpers stay inside the library that links them; only the cu* entry points are exported. */
#define XPU_RUNTIME_INTERNAL __attribute__((visibility("hidden")))

/*
 * Runs and forgets the context-local-storage destructors registered for `ctx` (the handle the
 * application sees). The library calls it just before it destroys a context (cuCtxDestroy, a
 * primary context reset or its last release), while the context can still be used.
 */
XPU_RUNTIME_INTERNAL void xpu_runtime_context_destroying(CUcontext ctx);

/*
 * The device's primary context, retained once per device however often it is asked for (again
 * after it was destroyed): what CUDART_INTERFACE hands the runtime, and where a library loaded
 * with no current context goes.
 */
XPU_RUNTIME_INTERNAL CUresult xpu_runtime_primary_context(CUcontext *pctx, CUdevice device);

/* What a library knows about the allocation that holds a pointer, for cuPointerGetAttributes. */
struct xpu_pointer_facts {
    int is_host;          /* host memory the driver allocated (cuMemAllocHost), else device memory */
    uint64_t base;        /* the allocation's start and size */
    uint64_t size;
    CUcontext context;    /* the context it belongs to, as the application names it */
    int device_ordinal;   /* that context's device, as the application numbers it */
};

/*
 * cuPointerGetAttributes: writes each attribute of `ptr` into data[i]; `facts` NULL means CUDA
 * does not know the pointer, and every attribute gets its default (zero) with CUDA_SUCCESS.
 * CUDA_ERROR_INVALID_VALUE for a NULL array or slot, CUDA_ERROR_NOT_SUPPORTED for an attribute
 * without an answer here (nothing is written then). pointer_attributes.c lists the sizes.
 */
XPU_RUNTIME_INTERNAL CUresult xpu_pointer_attributes(unsigned int count, const CUpointer_attribute *attributes, void **data,
                                                     CUdeviceptr ptr, const struct xpu_pointer_facts *facts);

/*
 * Managed and mapped host memory (coherent.c, docs/coherent-memory.md). The libraries call
 * xpu_coherent_push before device work that may read memory (launches, copies) and
 * xpu_coherent_pull after each synchronization (context, stream, event, synchronous copy); both
 * cost one load while no such memory exists.
 */
XPU_RUNTIME_INTERNAL void xpu_coherent_push(void);
XPU_RUNTIME_INTERNAL void xpu_coherent_pull(void);
/* cuMemHostAlloc(DEVICEMAP) and cuMemHostRegister(DEVICEMAP). */
XPU_RUNTIME_INTERNAL CUresult xpu_coherent_host_alloc(void **pp, size_t bytesize, unsigned int flags);
XPU_RUNTIME_INTERNAL CUresult xpu_coherent_register(void *p, size_t bytesize, unsigned int flags);
/* CUDA_ERROR_NOT_FOUND when `p` is no such memory (the caller goes on its own way). */
XPU_RUNTIME_INTERNAL CUresult xpu_coherent_free_host(void *p);
XPU_RUNTIME_INTERNAL CUresult xpu_coherent_unregister(void *p);
/* After cuMemFree of `dptr` succeeded: a managed range there is forgotten on the host. */
XPU_RUNTIME_INTERNAL void xpu_coherent_device_freed(CUdeviceptr dptr);
XPU_RUNTIME_INTERNAL void xpu_coherent_context_destroying(CUcontext ctx);
/*
 * The pointer attributes a coherent range answers (memory type, host and device pointer, managed,
 * mapped, range); CUDA_ERROR_NOT_FOUND otherwise, with `*translated` the device address to ask
 * the library about instead of `ptr`.
 */
XPU_RUNTIME_INTERNAL CUresult xpu_coherent_pointer_attribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr,
                                                             CUdeviceptr *translated);

/* Entries in an export table, size word included, or 0 for an unknown UUID (for tests). */
XPU_RUNTIME_INTERNAL size_t xpu_runtime_export_table_entries(const CUuuid *id);

/*
 * Bytes of the fatbinary at `image`: its first container and every container that follows it back
 * to back (8-byte aligned), or only the first between xpu_fatbinary_single_begin and _end on the
 * calling thread (a runtime registration: one translation unit's container); 0 when no container
 * starts at `image`. Reads past a container only where the page is mapped. See fatbinary.c.
 */
XPU_RUNTIME_INTERNAL size_t xpu_fatbinary_extent(const void *image);
XPU_RUNTIME_INTERNAL void xpu_fatbinary_single_begin(void);
XPU_RUNTIME_INTERNAL void xpu_fatbinary_single_end(void);

/*
 * Appends `count` bytes to C's stdout stream (device printf output at a synchronization), so that
 * they land in order with what the program itself printed through stdio.
 */
XPU_RUNTIME_INTERNAL void xpu_runtime_write_stdout(const void *bytes, size_t count);

/* MD2 (RFC 1319) of `length` bytes into `digest`. */
XPU_RUNTIME_INTERNAL void xpu_md2(const void *message, size_t length, uint8_t digest[16]);
/* HMAC (RFC 2104) over MD2 with a 16-byte key (MD2's block size), as INTEGRITY_CHECK computes. */
XPU_RUNTIME_INTERNAL void xpu_hmac_md2(const uint8_t key[16], const void *message, size_t length, uint8_t digest[16]);

#ifdef __cplusplus
}
#endif

#endif /* CXPU_RUNTIME_SUPPORT_H */
