/*
 * cuGetExportTable: the driver's private tables that the CUDA runtime and NVIDIA's libraries ask
 * for by UUID, each answered by a static table of our own whose slots are built from the served
 * driver API. Every slot inside a table's size is callable except where the public record says the
 * runtime expects NULL. What each table and slot does, and where the facts come from:
 * proto/EXPORT-TABLES.md.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "CXPURuntimeSupport.h"
#include "log.h"

#define SIZE_WORD(entries) ((const void *)(uintptr_t)((entries) * sizeof(void *)))

/*
 * A slot whose behaviour is not publicly known: callable, logged once (at debug level for the
 * tools tables, whose hooks have nothing to report while no tool is attached), answering `result`.
 */
#define OPAQUE_SLOT(table, index, result, debug)                                                  \
    static CUresult table##_slot_##index(void) {                                                  \
        static atomic_int logged;                                                                 \
        if (atomic_exchange(&logged, 1) == 0)                                                     \
            xpu_runtime_log(debug, "export table %s slot %d called: answered %d", #table, index,  \
                            (int)(result));                                                       \
        return (result);                                                                          \
    }

/* ---- CUDART_INTERFACE: modules from the runtime's registered fatbinaries, the primary context. */

/* `__fatBinC_Wrapper_t`, which host code registers with the runtime: magic, version, the fatbinary. */
struct fatbin_wrapper {
    uint32_t magic;
    uint32_t version;
    const void *data;
    const void *prelinked;
};
#define FATBIN_WRAPPER_MAGIC 0x466243B1u

/* A module from one translation unit's registered container: the containers after it in the
 * .nv_fatbin section belong to other units (fatbinary.c). */
static CUresult registered_module(CUmodule *module, const void *fatbinary) {
    xpu_fatbinary_single_begin();
    CUresult result = cuModuleLoadData(module, fatbinary);
    xpu_fatbinary_single_end();
    return result;
}

static CUresult module_from_wrapper(CUmodule *module, const struct fatbin_wrapper *wrapper) {
    if (module == NULL || wrapper == NULL) return CUDA_ERROR_INVALID_VALUE;
    if (wrapper->magic != FATBIN_WRAPPER_MAGIC || wrapper->data == NULL) return CUDA_ERROR_INVALID_IMAGE;
    return registered_module(module, wrapper->data);
}

static CUresult cudart_module_from_wrapper(CUmodule *module, const struct fatbin_wrapper *wrapper) {
    return module_from_wrapper(module, wrapper);
}

static CUresult cudart_module_from_wrapper_ext(CUmodule *module, const struct fatbin_wrapper *wrapper, void *unknown1,
                                               void *unknown2, uint32_t unknown3) {
    (void)unknown1, (void)unknown2, (void)unknown3;
    return module_from_wrapper(module, wrapper);
}

/* Takes the fatbinary itself (not its wrapper), and the module second. */
static CUresult cudart_module_from_fatbinary(const void *fatbinary, CUmodule *module, void *unknown1, void *unknown2,
                                             uint32_t unknown3) {
    (void)unknown1, (void)unknown2, (void)unknown3;
    if (module == NULL || fatbinary == NULL) return CUDA_ERROR_INVALID_VALUE;
    return registered_module(module, fatbinary);
}

/*
 * The device's primary context. Retained once per device (not once per call), so that the
 * runtime's own release at cudaDeviceReset brings it to zero; a destroyed primary context is
 * retained again on the next request.
 */
#define TRACKED_DEVICES 64
static pthread_mutex_t primary_lock = PTHREAD_MUTEX_INITIALIZER;
static CUcontext primary_contexts[TRACKED_DEVICES];

CUresult xpu_runtime_primary_context(CUcontext *pctx, CUdevice device) {
    if (pctx == NULL) return CUDA_ERROR_INVALID_VALUE;
    if (device < 0 || device >= TRACKED_DEVICES) return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&primary_lock);
    CUresult result = CUDA_SUCCESS;
    if (primary_contexts[device] == NULL) result = cuDevicePrimaryCtxRetain(&primary_contexts[device], device);
    if (result == CUDA_SUCCESS) *pctx = primary_contexts[device];
    pthread_mutex_unlock(&primary_lock);
    return result;
}

/* Takes a size; nothing to do here. */
static CUresult cudart_no_op_with_size(size_t unknown) {
    (void)unknown;
    return CUDA_SUCCESS;
}

/* Loads the PTX compiler libraries in a real driver; the PTX here is compiled where it runs. */
static CUresult cudart_load_compilers(void) { return CUDA_SUCCESS; }

OPAQUE_SLOT(cudart_interface, 3, CUDA_ERROR_NOT_SUPPORTED, 0)
OPAQUE_SLOT(cudart_interface, 4, CUDA_ERROR_NOT_SUPPORTED, 0)
OPAQUE_SLOT(cudart_interface, 5, CUDA_ERROR_NOT_SUPPORTED, 0)
OPAQUE_SLOT(cudart_interface, 9, CUDA_ERROR_NOT_SUPPORTED, 0)
OPAQUE_SLOT(cudart_interface, 10, CUDA_ERROR_NOT_SUPPORTED, 0)
OPAQUE_SLOT(cudart_interface, 11, CUDA_ERROR_NOT_SUPPORTED, 0)

static const void *const cudart_interface[13] = {
    SIZE_WORD(13),
    (const void *)cudart_module_from_wrapper,
    (const void *)xpu_runtime_primary_context,
    (const void *)cudart_interface_slot_3,
    (const void *)cudart_interface_slot_4,
    (const void *)cudart_interface_slot_5,
    (const void *)cudart_module_from_wrapper_ext,
    (const void *)cudart_no_op_with_size,
    (const void *)cudart_module_from_fatbinary,
    (const void *)cudart_interface_slot_9,
    (const void *)cudart_interface_slot_10,
    (const void *)cudart_interface_slot_11,
    (const void *)cudart_load_compilers,
};

/* ---- TOOLS_TLS: per-thread state of profiling tools; none is attached. */

OPAQUE_SLOT(tools_tls, 1, CUDA_SUCCESS, 1)
OPAQUE_SLOT(tools_tls, 2, CUDA_SUCCESS, 1)
OPAQUE_SLOT(tools_tls, 3, CUDA_SUCCESS, 1)

static const void *const tools_tls[4] = {
    SIZE_WORD(4), (const void *)tools_tls_slot_1, (const void *)tools_tls_slot_2, (const void *)tools_tls_slot_3,
};

/* ---- TOOLS_RUNTIME_CALLBACK_HOOKS: the runtime's callback records, which no tool reads here. */

static uint32_t callback_buffer_large[1024];
static uint32_t callback_buffer_small[14];

static void hooks_large_buffer(void **buffer, size_t *size) {
    if (buffer != NULL) *buffer = callback_buffer_large;
    if (size != NULL) *size = sizeof callback_buffer_large / sizeof callback_buffer_large[0];
}

static void hooks_small_buffer(void **buffer, size_t *size) {
    if (buffer != NULL) *buffer = callback_buffer_small;
    if (size != NULL) *size = sizeof callback_buffer_small / sizeof callback_buffer_small[0];
}

OPAQUE_SLOT(runtime_callback_hooks, 1, CUDA_SUCCESS, 1)
OPAQUE_SLOT(runtime_callback_hooks, 3, CUDA_SUCCESS, 1)
OPAQUE_SLOT(runtime_callback_hooks, 4, CUDA_SUCCESS, 1)
OPAQUE_SLOT(runtime_callback_hooks, 5, CUDA_SUCCESS, 1)

static const void *const runtime_callback_hooks[7] = {
    SIZE_WORD(7),
    (const void *)runtime_callback_hooks_slot_1,
    (const void *)hooks_large_buffer,
    (const void *)runtime_callback_hooks_slot_3,
    (const void *)runtime_callback_hooks_slot_4,
    (const void *)runtime_callback_hooks_slot_5,
    (const void *)hooks_small_buffer,
};

/* ---- CONTEXT_LOCAL_STORAGE: a value per (context, key), with a destructor run at context teardown. */

typedef void (*cls_destructor)(CUcontext, void *key, void *value);

struct cls_entry {
    CUcontext context;
    void *key;
    void *value;
    cls_destructor destructor;
    struct cls_entry *next;
};

static pthread_mutex_t cls_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cls_entry *cls_entries;

static CUresult cls_context(CUcontext *context) {
    if (*context != NULL) return CUDA_SUCCESS;
    CUresult result = cuCtxGetCurrent(context);
    if (result != CUDA_SUCCESS) return result;
    return *context == NULL ? CUDA_ERROR_INVALID_CONTEXT : CUDA_SUCCESS;
}

static struct cls_entry **cls_find(CUcontext context, void *key) {
    struct cls_entry **link = &cls_entries;
    while (*link != NULL && ((*link)->context != context || (*link)->key != key)) link = &(*link)->next;
    return link;
}

static CUresult cls_put(CUcontext context, void *key, void *value, cls_destructor destructor) {
    CUresult result = cls_context(&context);
    if (result != CUDA_SUCCESS) return result;
    pthread_mutex_lock(&cls_lock);
    struct cls_entry **link = cls_find(context, key);
    if (*link == NULL) {
        struct cls_entry *entry = calloc(1, sizeof *entry);
        if (entry == NULL) {
            pthread_mutex_unlock(&cls_lock);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        entry->context = context;
        entry->key = key;
        *link = entry;
    }
    (*link)->value = value;
    (*link)->destructor = destructor;
    pthread_mutex_unlock(&cls_lock);
    return CUDA_SUCCESS;
}

/* Forgets the value without running its destructor: callers free it themselves. */
static CUresult cls_delete(CUcontext context, void *key) {
    CUresult result = cls_context(&context);
    if (result != CUDA_SUCCESS) return result;
    pthread_mutex_lock(&cls_lock);
    struct cls_entry **link = cls_find(context, key);
    struct cls_entry *entry = *link;
    if (entry != NULL) *link = entry->next;
    pthread_mutex_unlock(&cls_lock);
    free(entry);
    return entry != NULL ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

static CUresult cls_get(void **value, CUcontext context, void *key) {
    if (value == NULL) return CUDA_ERROR_INVALID_VALUE;
    *value = NULL;
    CUresult result = cls_context(&context);
    if (result != CUDA_SUCCESS) return result;
    pthread_mutex_lock(&cls_lock);
    struct cls_entry *entry = *cls_find(context, key);
    if (entry != NULL) *value = entry->value;
    pthread_mutex_unlock(&cls_lock);
    return entry != NULL ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

/* This table has no size word: put is at [0], and [3] is NULL. */
static const void *const context_local_storage[4] = {
    (const void *)cls_put, (const void *)cls_delete, (const void *)cls_get, NULL,
};

void xpu_runtime_context_destroying(CUcontext ctx) {
    if (ctx == NULL) return;
    xpu_coherent_context_destroying(ctx);
    pthread_mutex_lock(&primary_lock);
    for (int device = 0; device < TRACKED_DEVICES; device++) {
        if (primary_contexts[device] == ctx) primary_contexts[device] = NULL;
    }
    pthread_mutex_unlock(&primary_lock);
    /* Destructors may call the driver (and so this table): run them with no lock held. */
    for (;;) {
        pthread_mutex_lock(&cls_lock);
        struct cls_entry **link = &cls_entries;
        while (*link != NULL && (*link)->context != ctx) link = &(*link)->next;
        struct cls_entry *entry = *link;
        if (entry != NULL) *link = entry->next;
        pthread_mutex_unlock(&cls_lock);
        if (entry == NULL) return;
        if (entry->destructor != NULL) entry->destructor(ctx, entry->key, entry->value);
        free(entry);
    }
}

/* ---- CTX_CREATE_BYPASS: context creation without the runtime's bookkeeping. */

static CUresult ctx_create_bypass(CUcontext *pctx, unsigned int flags, CUdevice device) {
    return cuCtxCreate_v2(pctx, flags, device);
}

static const void *const ctx_create_bypass_table[2] = {SIZE_WORD(2), (const void *)ctx_create_bypass};

/* ---- HEAP_ACCESS: the driver's internal heap records; there is no such heap here. */

OPAQUE_SLOT(heap_access, 1, CUDA_ERROR_NOT_SUPPORTED, 0)
OPAQUE_SLOT(heap_access, 2, CUDA_ERROR_NOT_SUPPORTED, 0)

static const void *const heap_access[3] = {
    SIZE_WORD(3), (const void *)heap_access_slot_1, (const void *)heap_access_slot_2,
};

/* ---- DEVICE_EXTENDED_RT: extended device queries (OptiX and the runtime). */

/* Writes a device flag the public record shows as 0 on real devices. */
static CUresult device_extended_flag(unsigned char *result, CUdevice device) {
    (void)device;
    if (result == NULL) return CUDA_ERROR_INVALID_VALUE;
    *result = 0;
    return CUDA_SUCCESS;
}

#define DEVICE_EXTENDED_SLOTS(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) \
    X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23) X(24) X(25)
#define DEVICE_EXTENDED_SLOT(index) OPAQUE_SLOT(device_extended_rt, index, CUDA_ERROR_NOT_SUPPORTED, 0)
DEVICE_EXTENDED_SLOTS(DEVICE_EXTENDED_SLOT)

static const void *const device_extended_rt[26] = {
    SIZE_WORD(26),
    (const void *)device_extended_rt_slot_1, (const void *)device_extended_rt_slot_2,
    (const void *)device_extended_rt_slot_3, (const void *)device_extended_rt_slot_4,
    (const void *)device_extended_rt_slot_5, (const void *)device_extended_rt_slot_6,
    (const void *)device_extended_rt_slot_7, (const void *)device_extended_rt_slot_8,
    (const void *)device_extended_rt_slot_9, (const void *)device_extended_rt_slot_10,
    (const void *)device_extended_rt_slot_11, (const void *)device_extended_rt_slot_12,
    (const void *)device_extended_flag, (const void *)device_extended_rt_slot_14,
    (const void *)device_extended_rt_slot_15, (const void *)device_extended_rt_slot_16,
    (const void *)device_extended_rt_slot_17, (const void *)device_extended_rt_slot_18,
    (const void *)device_extended_rt_slot_19, (const void *)device_extended_rt_slot_20,
    (const void *)device_extended_rt_slot_21, (const void *)device_extended_rt_slot_22,
    (const void *)device_extended_rt_slot_23, (const void *)device_extended_rt_slot_24,
    (const void *)device_extended_rt_slot_25,
};

/* ---- INTEGRITY_CHECK: a keyed hash of this process, these tables and the devices. */

static const uint8_t integrity_key[16] = {
    0x14, 0x6A, 0xDD, 0xAE, 0x53, 0xA9, 0xA7, 0x52, 0xAA, 0x08, 0x41, 0x36, 0x0B, 0xF5, 0x5A, 0x9F,
};

static CUresult integrity_check(uint32_t version, uint64_t unix_seconds, uint64_t result[2]);
static const void *const integrity_check_table[3];

struct integrity_process {
    uint32_t driver_version;
    uint32_t version;
    uint32_t process;
    uint32_t thread;
    const void *cudart_interface;
    const void *integrity_table;
    const void *integrity_function;
    uint64_t unix_seconds;
};

struct integrity_device {
    CUuuid uuid;
    int32_t pci_domain;
    int32_t pci_bus;
    int32_t pci_device;
};

_Static_assert(sizeof(struct integrity_process) == 48, "the hashed process record is 48 bytes");
_Static_assert(sizeof(struct integrity_device) == 28, "the hashed device record is 28 bytes");

static CUresult integrity_check(uint32_t version, uint64_t unix_seconds, uint64_t result[2]) {
    if (result == NULL) return CUDA_ERROR_INVALID_VALUE;
    /* Versions ending in 0 or 1 get fixed answers. */
    if (version % 10 == 0 || version % 10 == 1) {
        result[0] = version % 10 == 0 ? 0x3341181C03CB675Cull : 0x1841181C03CB675Cull;
        result[1] = 0x8ED383AA1F4CD1E8ull;
        return CUDA_SUCCESS;
    }
    int driver_version = 0, count = 0;
    CUresult status = cuDriverGetVersion(&driver_version);
    if (status == CUDA_SUCCESS) status = cuDeviceGetCount(&count);
    if (status != CUDA_SUCCESS) return status;
    if (count < 0 || count > 1024) return CUDA_ERROR_INVALID_DEVICE;
    size_t length = sizeof(struct integrity_process) + (size_t)count * sizeof(struct integrity_device);
    unsigned char *message = calloc(1, length);
    if (message == NULL) return CUDA_ERROR_OUT_OF_MEMORY;
    struct integrity_process process = {
        .driver_version = (uint32_t)driver_version,
        .version = version,
        .process = (uint32_t)getpid(),
        .thread = (uint32_t)(uintptr_t)pthread_self(),
        .cudart_interface = cudart_interface,
        .integrity_table = integrity_check_table,
        .integrity_function = (const void *)integrity_check,
        .unix_seconds = unix_seconds,
    };
    memcpy(message, &process, sizeof process);
    for (int ordinal = 0; ordinal < count && status == CUDA_SUCCESS; ordinal++) {
        CUdevice device;
        struct integrity_device record;
        memset(&record, 0, sizeof record);
        status = cuDeviceGet(&device, ordinal);
        if (status == CUDA_SUCCESS) status = cuDeviceGetUuid_v2(&record.uuid, device);
        if (status == CUDA_SUCCESS) status = cuDeviceGetAttribute(&record.pci_domain, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, device);
        if (status == CUDA_SUCCESS) status = cuDeviceGetAttribute(&record.pci_bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, device);
        if (status == CUDA_SUCCESS) status = cuDeviceGetAttribute(&record.pci_device, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, device);
        memcpy(message + sizeof process + (size_t)ordinal * sizeof record, &record, sizeof record);
    }
    if (status == CUDA_SUCCESS) {
        uint8_t digest[16];
        xpu_hmac_md2(integrity_key, message, length, digest);
        memcpy(result, digest, sizeof digest);
    }
    free(message);
    return status;
}

OPAQUE_SLOT(integrity_check, 2, CUDA_ERROR_NOT_SUPPORTED, 0)

static const void *const integrity_check_table[3] = {
    SIZE_WORD(3), (const void *)integrity_check, (const void *)integrity_check_slot_2,
};

/* ---- CONTEXT_CHECKS: checks on a context handle (CUDA 13's cuBLAS reads 17 entries). */

static CUresult context_check(CUcontext context, uint32_t *wrapped, const void **unwrapped) {
    (void)context, (void)unwrapped;
    if (wrapped != NULL) *wrapped = 0;
    return CUDA_SUCCESS;
}

static uint32_t context_check_flags(void) { return 0; }

#define CONTEXT_CHECK_SLOTS(X) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16)
#define CONTEXT_CHECK_SLOT(index) OPAQUE_SLOT(context_checks, index, CUDA_ERROR_NOT_SUPPORTED, 0)
OPAQUE_SLOT(context_checks, 1, CUDA_ERROR_NOT_SUPPORTED, 0)
CONTEXT_CHECK_SLOTS(CONTEXT_CHECK_SLOT)

static const void *const context_checks[17] = {
    SIZE_WORD(17),
    (const void *)context_checks_slot_1, (const void *)context_check, (const void *)context_check_flags,
    (const void *)context_checks_slot_4, (const void *)context_checks_slot_5, (const void *)context_checks_slot_6,
    (const void *)context_checks_slot_7, (const void *)context_checks_slot_8, (const void *)context_checks_slot_9,
    (const void *)context_checks_slot_10, (const void *)context_checks_slot_11, (const void *)context_checks_slot_12,
    (const void *)context_checks_slot_13, (const void *)context_checks_slot_14, (const void *)context_checks_slot_15,
    (const void *)context_checks_slot_16,
};

/* ---- TOOLS_CONTEXT (the driver's name, CU_ETID_ToolsContext): requested by CUDA 13.4+ runtimes, 95
 * entries, all non-NULL. Which slots the runtime calls, and how each is answered: proto/EXPORT-TABLES.md. */

#define TOOLS_CONTEXT_SLOTS(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23) X(24) X(25) X(26) X(27) X(28) X(29) X(30) X(31) X(32) X(33) X(34) X(35) X(36) X(37) X(38) X(39) X(40) X(41) X(42) X(43) X(44) X(45) X(46) X(47) X(48) X(49) X(50) X(51) X(52) X(53) X(54) X(55) X(56) X(57) X(58) X(59) X(60) X(61) X(62) X(63) X(64) X(65) X(66) X(67) X(68) X(69) X(70) X(71) X(72) X(73) X(74) X(75) X(76) X(77) X(78) X(79) X(80) X(81) X(82) X(83) X(84) X(85) X(86) X(87) X(88) X(89) X(90) X(91) X(92) X(93) X(94)
#define TOOLS_CONTEXT_SLOT(index) OPAQUE_SLOT(tools_context, index, CUDA_ERROR_NOT_SUPPORTED, 0)
TOOLS_CONTEXT_SLOTS(TOOLS_CONTEXT_SLOT)
#define TOOLS_CONTEXT_ENTRY(index) (const void *)tools_context_slot_##index,

static const void *const tools_context[95] = {
    SIZE_WORD(95),
    TOOLS_CONTEXT_SLOTS(TOOLS_CONTEXT_ENTRY)
};

/* ---- The lookup. */

struct export_table {
    const char *name;
    uint8_t uuid[16];
    const void *const *entries;
    size_t count;
};

static const struct export_table export_tables[] = {
    {"CUDART_INTERFACE", {0x6b, 0xd5, 0xfb, 0x6c, 0x5b, 0xf4, 0xe7, 0x4a, 0x89, 0x87, 0xd9, 0x39, 0x12, 0xfd, 0x9d, 0xf9},
     cudart_interface, 13},
    {"TOOLS_TLS", {0x42, 0xd8, 0x5a, 0x81, 0x23, 0xf6, 0xcb, 0x47, 0x82, 0x98, 0xf6, 0xe7, 0x8a, 0x3a, 0xec, 0xdc},
     tools_tls, 4},
    {"TOOLS_RUNTIME_CALLBACK_HOOKS",
     {0xa0, 0x94, 0x79, 0x8c, 0x2e, 0x74, 0x2e, 0x74, 0x93, 0xf2, 0x08, 0x00, 0x20, 0x0c, 0x0a, 0x66},
     runtime_callback_hooks, 7},
    {"CONTEXT_LOCAL_STORAGE",
     {0xc6, 0x93, 0x33, 0x6e, 0x11, 0x21, 0xdf, 0x11, 0xa8, 0xc3, 0x68, 0xf3, 0x55, 0xd8, 0x95, 0x93},
     context_local_storage, 4},
    {"CTX_CREATE_BYPASS", {0x0c, 0xa5, 0x0b, 0x8c, 0x10, 0x04, 0x92, 0x9a, 0x89, 0xa7, 0xd0, 0xdf, 0x10, 0xe7, 0x72, 0x86},
     ctx_create_bypass_table, 2},
    {"HEAP_ACCESS", {0x19, 0x5b, 0xcb, 0xf4, 0xd6, 0x7d, 0x02, 0x4a, 0xac, 0xc5, 0x1d, 0x29, 0xce, 0xa6, 0x31, 0xae},
     heap_access, 3},
    {"DEVICE_EXTENDED_RT", {0xb1, 0x05, 0x41, 0xe1, 0xf7, 0xc7, 0xc7, 0x4a, 0x9f, 0x64, 0xf2, 0x23, 0xbe, 0x99, 0xf1, 0xe2},
     device_extended_rt, 26},
    {"INTEGRITY_CHECK", {0xd4, 0x08, 0x20, 0x55, 0xbd, 0xe6, 0x70, 0x4b, 0x8d, 0x34, 0xba, 0x12, 0x3c, 0x66, 0xe1, 0xf2},
     integrity_check_table, 3},
    {"CONTEXT_CHECKS", {0x26, 0x3e, 0x88, 0x60, 0x7c, 0xd2, 0x61, 0x43, 0x92, 0xf6, 0xbb, 0xd5, 0x00, 0x6d, 0xfa, 0x7e},
     context_checks, 17},
    {"TOOLS_CONTEXT", {0x21, 0x31, 0x8c, 0x60, 0x97, 0x14, 0x32, 0x48, 0x8c, 0xa6, 0x41, 0xff, 0x73, 0x24, 0xc8, 0xf2},
     tools_context, 95},
};

/* Asks whether the runtime's normal start-up may be skipped: "not found" keeps it. */
static const uint8_t skip_init_uuid[16] = {
    0xf8, 0xcf, 0xf9, 0x51, 0x21, 0x46, 0x8b, 0x4e, 0xb9, 0xe2, 0xfb, 0x46, 0x9e, 0x7c, 0x0d, 0xd9,
};

static const struct export_table *find_table(const CUuuid *id) {
    for (size_t i = 0; i < sizeof export_tables / sizeof export_tables[0]; i++) {
        if (memcmp(export_tables[i].uuid, id->bytes, 16) == 0) return &export_tables[i];
    }
    return NULL;
}

size_t xpu_runtime_export_table_entries(const CUuuid *id) {
    const struct export_table *table = id != NULL ? find_table(id) : NULL;
    return table != NULL ? table->count : 0;
}

/* Unknown UUIDs already logged, so each is logged once. */
#define LOGGED_UNKNOWN_CAPACITY 32
static pthread_mutex_t unknown_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t logged_unknown[LOGGED_UNKNOWN_CAPACITY][16];
static int logged_unknown_count;

static int first_sight_of_unknown(const CUuuid *id) {
    pthread_mutex_lock(&unknown_lock);
    int first = 1;
    for (int i = 0; i < logged_unknown_count && first; i++) first = memcmp(logged_unknown[i], id->bytes, 16) != 0;
    if (first && logged_unknown_count < LOGGED_UNKNOWN_CAPACITY) memcpy(logged_unknown[logged_unknown_count++], id->bytes, 16);
    pthread_mutex_unlock(&unknown_lock);
    return first;
}

static void format_uuid(const CUuuid *id, char text[37]) {
    static const int dashes_after[] = {3, 5, 7, 9};
    const unsigned char *bytes = (const unsigned char *)id->bytes;
    char *out = text;
    for (int i = 0, dash = 0; i < 16; i++) {
        static const char digits[] = "0123456789abcdef";
        *out++ = digits[bytes[i] >> 4];
        *out++ = digits[bytes[i] & 15];
        if (dash < 4 && i == dashes_after[dash]) *out++ = '-', dash++;
    }
    *out = 0;
}

/* Needs no cuInit and no server: every table is this library's own. */
CUresult cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId) {
    if (ppExportTable == NULL || pExportTableId == NULL) return CUDA_ERROR_INVALID_VALUE;
    *ppExportTable = NULL;
    char text[37];
    format_uuid(pExportTableId, text);
    const struct export_table *table = find_table(pExportTableId);
    if (table != NULL) {
        xpu_runtime_log(1, "cuGetExportTable %s (%s)", table->name, text);
        *ppExportTable = table->entries;
        return CUDA_SUCCESS;
    }
    if (memcmp(pExportTableId->bytes, skip_init_uuid, 16) == 0) {
        xpu_runtime_log(1, "cuGetExportTable %s (skip-init): not found, the runtime starts normally", text);
        return CUDA_ERROR_NOT_FOUND;
    }
    if (first_sight_of_unknown(pExportTableId)) {
        xpu_runtime_log(0, "cuGetExportTable: unknown export table %s, answered CUDA_ERROR_INVALID_VALUE "
                           "(proto/EXPORT-TABLES.md lists the tables served)", text);
    }
    return CUDA_ERROR_INVALID_VALUE;
}
