// The OpenCL ICD's C side: the dispatch table every object handed to the application starts
// with (the ICD loader finds its vendor's functions through it), and the objects themselves.
// What an object stands for lives in Swift (Sources/XPUOpenCL/Objects.swift); here it is only
// the dispatch pointer, the kind and the server's id.
#ifndef CXPU_OPENCL_ICD_H
#define CXPU_OPENCL_ICD_H

#include <stdint.h>

/// The dispatch table (dispatch.c): one slot per entry of Khronos' cl_icd_dispatch, in its
/// order (xpu_cl_slots.def).
struct xpu_cl_dispatch;

/// Every cl_platform_id, cl_device_id, cl_context, ... this library hands out points to one.
struct xpu_cl_object {
    /// First, as the ICD loader requires.
    const struct xpu_cl_dispatch *dispatch;
    /// The id the server knows the object by (the client's own for events).
    uint64_t remote;
    /// XPUOpenCL's ObjectKind raw value.
    uint32_t kind;
};

/// A new object (dispatch set), or NULL when memory is short.
struct xpu_cl_object *xpu_cl_object_new(uint32_t kind, uint64_t remote);
void xpu_cl_object_free(struct xpu_cl_object *object);

/// Implemented in Swift: logs the first use of an unserved call.
void xpu_opencl_unsupported(const char *name);

/// The address of a served call by name (clGetExtensionFunctionAddress), or NULL.
void *xpu_cl_function(const char *name);

#endif
