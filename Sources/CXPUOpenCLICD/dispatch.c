// The dispatch table: the served calls' addresses, and a stub for every other slot.
#include "CXPUOpenCLICD.h"

#include <CXPUOpenCL.h>
#include <stdlib.h>
#include <string.h>

struct xpu_cl_dispatch {
#define SERVED(name) void *name;
#define STATUS(name) void *name;
#define OBJECT(name) void *name;
#define NOTHING(name) void *name;
#include "xpu_cl_slots.def"
#undef SERVED
#undef STATUS
#undef OBJECT
#undef NOTHING
};

#define SERVED(name)
#define STATUS(name) \
    static cl_int unsupported_##name(void) { \
        xpu_opencl_unsupported(#name); \
        return CL_INVALID_OPERATION; \
    }
#define OBJECT(name) \
    static void *unsupported_##name(void) { \
        xpu_opencl_unsupported(#name); \
        return NULL; \
    }
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
#define OBJECT(name) .name = (void *)&unsupported_##name,
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
#define OBJECT(slot)
#define NOTHING(slot)
#include "xpu_cl_slots.def"
#undef SERVED
#undef STATUS
#undef OBJECT
#undef NOTHING
    if (strcmp(name, "clIcdGetPlatformIDsKHR") == 0) return (void *)&clIcdGetPlatformIDsKHR;
    return NULL;
}
