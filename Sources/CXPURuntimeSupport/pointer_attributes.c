/*
 * pointer_attributes.c: cuPointerGetAttributes, answered from what the library knows about the
 * allocation holding a pointer (struct xpu_pointer_facts). The runtime's cudaPointerGetAttributes
 * is this call (CONTEXT, MEMORY_TYPE, DEVICE_POINTER, HOST_POINTER, IS_MANAGED, DEVICE_ORDINAL),
 * and CuPy asks it of every host array it copies, to learn whether the memory is pinned.
 *
 * cuda.h's contract: unlike cuPointerGetAttribute, a pointer CUDA does not know is no error; every
 * attribute gets its default (zero: memory type 0 is cudaMemoryTypeUnregistered to the runtime).
 * Sizes written: CUcontext, pointers, addresses and sizes 8 bytes; the memory type, ordinals,
 * access flags and the booleans 4 (unsigned int or int). The runtime passes an uninitialized int
 * for IS_MANAGED and reads all of it: a boolean written as one byte made pinned host memory
 * "managed" to cudaPointerGetAttributes.
 */
#include <string.h>

#include "CXPURuntimeSupport.h"

/* Bytes an attribute's value takes, or 0 for an attribute this library cannot answer. */
static size_t attribute_bytes(CUpointer_attribute attribute) {
    switch (attribute) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
    case CU_POINTER_ATTRIBUTE_MAPPING_SIZE:
    case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR:
        return 8;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
    case CU_POINTER_ATTRIBUTE_LOCALITY_DOMAIN_ORDINAL:
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS:
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE:
    case CU_POINTER_ATTRIBUTE_MAPPED:
    case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE:
    case CU_POINTER_ATTRIBUTE_IS_HW_DECOMPRESS_CAPABLE:
        return 4;
    /* BUFFER_ID, MEMORY_BLOCK_ID (process-wide unique ids) and ALLOWED_HANDLE_TYPES (shareable
     * handles) have no honest answer here: NOT_SUPPORTED, as cuPointerGetAttribute answers them. */
    default:
        return 0;
    }
}

static void store(void *data, size_t bytes, uint64_t value) {
    if (bytes == 8) {
        memcpy(data, &value, 8);
    } else {
        uint32_t narrow = (uint32_t)value;
        memcpy(data, &narrow, 4);
    }
}

/* The value of one attribute of `ptr` inside a known allocation. */
static uint64_t attribute_value(CUpointer_attribute attribute, CUdeviceptr ptr, const struct xpu_pointer_facts *facts) {
    switch (attribute) {
    case CU_POINTER_ATTRIBUTE_CONTEXT: return (uint64_t)(uintptr_t)facts->context;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE: return facts->is_host ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
    /* Unified addressing: host memory the driver allocated has the same address on the device. */
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: return ptr;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER: return facts->is_host ? ptr : 0;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: return (uint64_t)(uint32_t)facts->device_ordinal;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
    case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR: return facts->base;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
    case CU_POINTER_ATTRIBUTE_MAPPING_SIZE: return facts->size;
    case CU_POINTER_ATTRIBUTE_MAPPED: return 1;
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS: return 0x3; /* CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE */
    case CU_POINTER_ATTRIBUTE_LOCALITY_DOMAIN_ORDINAL: return (uint64_t)(uint32_t)-1; /* not localized */
    /* Not managed, not from a pool, not IPC- or RDMA-capable, no hardware decompression,
     * no synchronous-memops flag set. */
    default: return 0;
    }
}

CUresult xpu_pointer_attributes(unsigned int count, const CUpointer_attribute *attributes, void **data, CUdeviceptr ptr,
                                const struct xpu_pointer_facts *facts) {
    if (count > 0 && (attributes == NULL || data == NULL)) return CUDA_ERROR_INVALID_VALUE;
    for (unsigned int i = 0; i < count; i++) {
        if (data[i] == NULL) return CUDA_ERROR_INVALID_VALUE;
        if (attribute_bytes(attributes[i]) == 0) return CUDA_ERROR_NOT_SUPPORTED;
    }
    for (unsigned int i = 0; i < count; i++) {
        size_t bytes = attribute_bytes(attributes[i]);
        uint64_t value = facts == NULL ? 0 : attribute_value(attributes[i], ptr, facts);
        /* An unknown pointer's locality is "none" too. */
        if (facts == NULL && attributes[i] == CU_POINTER_ATTRIBUTE_LOCALITY_DOMAIN_ORDINAL) value = (uint32_t)-1;
        store(data[i], bytes, value);
    }
    return CUDA_SUCCESS;
}
