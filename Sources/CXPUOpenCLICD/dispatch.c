// The dispatch table: the served calls' addresses, and a stub for every other slot.
#include "CXPUOpenCLICD.h"

#include <CXPUOpenCL.h>
#include <stdlib.h>
#include <string.h>

struct xpu_cl_dispatch {
#define SERVED(name) void *name;
#define STATUS(name) void *name;
#define OBJECT(name, parameters) void *name;
#define NOTHING(name) void *name;
#include "xpu_cl_slots.def"
#undef SERVED
#undef STATUS
#undef OBJECT
#undef NOTHING
};

// An OBJECT stub takes the call's parameters as words, so that it can reach errcode_ret, the last
// one: every parameter before it is a handle, pointer, size or integer (Tests/ABI/check-opencl-abi.sh
// checks each call's parameter count and errcode_ret's type against Khronos' prototypes), and on
// the x86-64 and AArch64 Linux ABIs each such argument is passed in one integer register or
// stack slot, whatever its C type, so the stub sees the caller's errcode_ret where it expects it.
#define XPU_WORDS_1 uintptr_t w1
#define XPU_WORDS_2 XPU_WORDS_1, uintptr_t w2
#define XPU_WORDS_3 XPU_WORDS_2, uintptr_t w3
#define XPU_WORDS_4 XPU_WORDS_3, uintptr_t w4
#define XPU_WORDS_5 XPU_WORDS_4, uintptr_t w5
#define XPU_WORDS_6 XPU_WORDS_5, uintptr_t w6
#define XPU_WORDS_7 XPU_WORDS_6, uintptr_t w7
#define XPU_WORDS_8 XPU_WORDS_7, uintptr_t w8
#define XPU_WORDS_9 XPU_WORDS_8, uintptr_t w9
#define XPU_WORDS_10 XPU_WORDS_9, uintptr_t w10
#define XPU_WORDS_11 XPU_WORDS_10, uintptr_t w11
#define XPU_ERRCODE_STUB(name, words) \
    static void *unsupported_##name(words, cl_int *errcode_ret) { \
        xpu_opencl_unsupported(#name); \
        if (errcode_ret != NULL) *errcode_ret = CL_INVALID_OPERATION; \
        return NULL; \
    }
#define XPU_OBJECT_STUB_0(name) \
    static void *unsupported_##name(void) { \
        xpu_opencl_unsupported(#name); \
        return NULL; \
    }
#define XPU_OBJECT_STUB_2(name) XPU_ERRCODE_STUB(name, XPU_WORDS_1)
#define XPU_OBJECT_STUB_3(name) XPU_ERRCODE_STUB(name, XPU_WORDS_2)
#define XPU_OBJECT_STUB_4(name) XPU_ERRCODE_STUB(name, XPU_WORDS_3)
#define XPU_OBJECT_STUB_5(name) XPU_ERRCODE_STUB(name, XPU_WORDS_4)
#define XPU_OBJECT_STUB_6(name) XPU_ERRCODE_STUB(name, XPU_WORDS_5)
#define XPU_OBJECT_STUB_7(name) XPU_ERRCODE_STUB(name, XPU_WORDS_6)
#define XPU_OBJECT_STUB_8(name) XPU_ERRCODE_STUB(name, XPU_WORDS_7)
#define XPU_OBJECT_STUB_9(name) XPU_ERRCODE_STUB(name, XPU_WORDS_8)
#define XPU_OBJECT_STUB_10(name) XPU_ERRCODE_STUB(name, XPU_WORDS_9)
#define XPU_OBJECT_STUB_11(name) XPU_ERRCODE_STUB(name, XPU_WORDS_10)
#define XPU_OBJECT_STUB_12(name) XPU_ERRCODE_STUB(name, XPU_WORDS_11)

#define SERVED(name)
#define STATUS(name) \
    static cl_int unsupported_##name(void) { \
        xpu_opencl_unsupported(#name); \
        return CL_INVALID_OPERATION; \
    }
#define OBJECT(name, parameters) XPU_OBJECT_STUB_##parameters(name)
#define NOTHING(name) \
    static void unsupported_##name(void) { xpu_opencl_unsupported(#name); }
#include "xpu_cl_slots.def"
#undef SERVED
#undef STATUS
#undef OBJECT
#undef NOTHING

static const struct xpu_cl_dispatch dispatch = {
#define SERVED(name) .name = (void *)&name,
#define STATUS(name) .name = (void *)&unsupported_##name,
#define OBJECT(name, parameters) .name = (void *)&unsupported_##name,
#define NOTHING(name) .name = (void *)&unsupported_##name,
#include "xpu_cl_slots.def"
#undef SERVED
#undef STATUS
#undef OBJECT
#undef NOTHING
};

struct xpu_cl_object *xpu_cl_object_new(uint32_t kind, uint64_t remote) {
    struct xpu_cl_object *object = malloc(sizeof *object);
    if (object == NULL) return NULL;
    object->dispatch = &dispatch;
    object->remote = remote;
    object->kind = kind;
    return object;
}

void xpu_cl_object_free(struct xpu_cl_object *object) { free(object); }

void *xpu_cl_function(const char *name) {
    if (name == NULL) return NULL;
#define SERVED(slot) \
    if (strcmp(name, #slot) == 0) return (void *)&slot;
#define STATUS(slot)
#define OBJECT(slot, parameters)
#define NOTHING(slot)
#include "xpu_cl_slots.def"
#undef SERVED
#undef STATUS
#undef OBJECT
#undef NOTHING
    if (strcmp(name, "clIcdGetPlatformIDsKHR") == 0) return (void *)&clIcdGetPlatformIDsKHR;
    return NULL;
}
