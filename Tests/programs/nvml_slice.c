/* NVML and the driver API in one process (one session, one tenant): NVML must report what the
 * driver API reports while the program allocates, its own process among the running ones, its
 * kernels' share of device time, and NVML_ERROR_NOT_SUPPORTED for what is not served.
 * Compiled against NVIDIA's cuda.h and nvml.h by Tests/XPUEndToEndTests/NVMLTests.swift and run
 * through xpu-run with XPU_NVML_CACHE_MS=0 (every NVML query reaches the server).
 * Prints "nvml_slice: N failures" last; exits 0 when there are none. */
/* Every entry point under its own name: the versioned ones and the old ones a real
 * libnvidia-ml.so.1 still exports (nvmlInit, nvmlDeviceGetComputeRunningProcesses, ...). */
#define NVML_NO_UNVERSIONED_FUNC_DEFS
#include <cuda.h>
#include <nvml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int failures = 0;

#define CU(call)                                                                              \
    do {                                                                                      \
        CUresult r_ = (call);                                                                 \
        if (r_ != CUDA_SUCCESS) {                                                             \
            printf("FAIL %s:%d: %s -> %d\n", __FILE__, __LINE__, #call, (int)r_);             \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

#define NV(call)                                                                              \
    do {                                                                                      \
        nvmlReturn_t r_ = (call);                                                             \
        if (r_ != NVML_SUCCESS) {                                                             \
            printf("FAIL %s:%d: %s -> %d (%s)\n", __FILE__, __LINE__, #call, (int)r_,         \
                   nvmlErrorString(r_));                                                      \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

#define EXPECT(condition, ...)                                                                \
    do {                                                                                      \
        if (!(condition)) {                                                                   \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #condition);                       \
            printf(__VA_ARGS__);                                                              \
            printf("\n");                                                                     \
            failures++;                                                                       \
        }                                                                                     \
    } while (0)

/* One thread counting to n: about a millisecond per few thousand steps on the simulated device. */
static const char *spin_ptx =
    ".version 7.0\n"
    ".target sm_70\n"
    ".address_size 64\n"
    ".visible .entry spin(.param .u32 n) {\n"
    "  .reg .pred %p; .reg .b32 %r<3>;\n"
    "  ld.param.u32 %r1, [n]; mov.u32 %r2, 0;\n"
    "LOOP: add.u32 %r2, %r2, 1; setp.lt.u32 %p, %r2, %r1; @%p bra LOOP;\n"
    "  ret;\n"
    "}\n";

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* NVML's and the driver's memory agree: total, and used = total - free (one tenant). */
static void compare_memory(nvmlDevice_t device, const char *when, unsigned long long expected_used) {
    size_t cu_free = 0, cu_total = 0;
    CU(cuMemGetInfo(&cu_free, &cu_total));
    nvmlMemory_t memory;
    NV(nvmlDeviceGetMemoryInfo(device, &memory));
    nvmlMemory_v2_t memory2;
    memset(&memory2, 0, sizeof memory2);
    memory2.version = nvmlMemory_v2;
    NV(nvmlDeviceGetMemoryInfo_v2(device, &memory2));
    printf("%s: cuMemGetInfo used %llu MiB of %llu MiB; nvml used %llu MiB free %llu MiB of %llu MiB\n", when,
           (unsigned long long)(cu_total - cu_free) >> 20, (unsigned long long)cu_total >> 20, memory.used >> 20,
           memory.free >> 20, memory.total >> 20);
    EXPECT(memory.total == cu_total, "nvml total %llu, cuMemGetInfo total %zu", memory.total, cu_total);
    EXPECT(memory.used == cu_total - cu_free, "nvml used %llu, cuMemGetInfo used %zu", memory.used, cu_total - cu_free);
    EXPECT(memory.free == cu_free, "nvml free %llu, cuMemGetInfo free %zu", memory.free, cu_free);
    EXPECT(memory.used == expected_used, "nvml used %llu, allocated %llu", memory.used, expected_used);
    EXPECT(memory2.total == memory.total && memory2.used == memory.used && memory2.free == memory.free &&
               memory2.reserved == 0,
           "v2 %llu/%llu/%llu differs from v1", memory2.total, memory2.used, memory2.free);

    /* The process list: this process, holding what it allocated (every version of the call). */
    unsigned int count = 0;
    nvmlReturn_t r = nvmlDeviceGetComputeRunningProcesses_v3(device, &count, NULL);
    EXPECT(r == NVML_ERROR_INSUFFICIENT_SIZE && count == 1, "size query -> %d, count %u", (int)r, count);
    nvmlProcessInfo_t infos[4];
    count = 4;
    NV(nvmlDeviceGetComputeRunningProcesses_v3(device, &count, infos));
    EXPECT(count == 1 && infos[0].pid == (unsigned)getpid() && infos[0].usedGpuMemory == memory.used &&
               infos[0].gpuInstanceId == 0xFFFFFFFFu,
           "v3: %u processes, pid %u (mine %d), %llu bytes", count, count ? infos[0].pid : 0, (int)getpid(),
           count ? infos[0].usedGpuMemory : 0ULL);
    nvmlProcessInfo_v1_t v1[4];
    count = 4;
    NV(nvmlDeviceGetComputeRunningProcesses(device, &count, v1));
    EXPECT(count == 1 && v1[0].pid == (unsigned)getpid() && v1[0].usedGpuMemory == memory.used, "v1 process list");
    nvmlProcessInfo_v2_t v2[4];
    count = 4;
    NV(nvmlDeviceGetComputeRunningProcesses_v2(device, &count, v2));
    EXPECT(count == 1 && v2[0].pid == (unsigned)getpid() && v2[0].usedGpuMemory == memory.used, "v2 process list");
    count = 4;
    NV(nvmlDeviceGetGraphicsRunningProcesses_v3(device, &count, infos));
    EXPECT(count == 0, "%u graphics processes", count);
}

/* Launches the spin kernel back to back for `seconds`, then asks for the utilization. */
static unsigned int busy_utilization(nvmlDevice_t device, CUfunction spin, double seconds) {
    unsigned int n = 100000;
    void *params[] = {&n};
    double end = now_seconds() + seconds;
    while (now_seconds() < end) {
        CU(cuLaunchKernel(spin, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL));
        CU(cuCtxSynchronize());
    }
    nvmlUtilization_t utilization;
    NV(nvmlDeviceGetUtilizationRates(device, &utilization));
    return utilization.gpu;
}

int main(void) {
    NV(nvmlInit_v2());
    NV(nvmlInit());  /* nested: one nvmlShutdown per nvmlInit */
    CU(cuInit(0));
    unsigned int count = 0;
    int cu_count = 0;
    NV(nvmlDeviceGetCount_v2(&count));
    CU(cuDeviceGetCount(&cu_count));
    EXPECT((int)count == cu_count, "nvml count %u, CUDA count %d", count, cu_count);

    nvmlDevice_t device, again;
    NV(nvmlDeviceGetHandleByIndex_v2(0, &device));
    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE], cu_name[256];
    NV(nvmlDeviceGetName(device, name, sizeof name));
    CU(cuDeviceGetName(cu_name, sizeof cu_name, 0));
    printf("device 0: %s\n", name);
    EXPECT(strcmp(name, cu_name) == 0, "nvml name '%s', CUDA name '%s'", name, cu_name);
    EXPECT(nvmlDeviceGetName(device, name, 4) == NVML_ERROR_INSUFFICIENT_SIZE, "short name buffer");

    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE], expected_uuid[64];
    NV(nvmlDeviceGetUUID(device, uuid, sizeof uuid));
    CUuuid cu_uuid;
    CU(cuDeviceGetUuid(&cu_uuid, 0));
    const unsigned char *b = (const unsigned char *)cu_uuid.bytes;
    snprintf(expected_uuid, sizeof expected_uuid,
             "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    EXPECT(strcmp(uuid, expected_uuid) == 0, "uuid %s, expected %s", uuid, expected_uuid);
    NV(nvmlDeviceGetHandleByUUID(uuid, &again));
    EXPECT(again == device, "handle by UUID");

    nvmlPciInfo_t pci;
    NV(nvmlDeviceGetPciInfo_v3(device, &pci));
    int bus = 0;
    CU(cuDeviceGetAttribute(&bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, 0));
    printf("pci: %s (legacy %s)\n", pci.busId, pci.busIdLegacy);
    EXPECT(pci.bus == (unsigned)bus, "pci bus %u, CUDA %d", pci.bus, bus);
    NV(nvmlDeviceGetHandleByPciBusId_v2(pci.busId, &again));
    EXPECT(again == device, "handle by PCI bus id");
    NV(nvmlDeviceGetHandleByPciBusId(pci.busIdLegacy, &again));
    EXPECT(again == device, "handle by legacy PCI bus id");
    unsigned int index = 99;
    NV(nvmlDeviceGetIndex(device, &index));
    EXPECT(index == 0, "index %u", index);

    int major = 0, minor = 0, cu_major = 0, cu_minor = 0;
    NV(nvmlDeviceGetCudaComputeCapability(device, &major, &minor));
    CU(cuDeviceGetAttribute(&cu_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0));
    CU(cuDeviceGetAttribute(&cu_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0));
    EXPECT(major == cu_major && minor == cu_minor, "capability %d.%d, CUDA %d.%d", major, minor, cu_major, cu_minor);
    int version = 0, cu_version = 0;
    NV(nvmlSystemGetCudaDriverVersion_v2(&version));
    CU(cuDriverGetVersion(&cu_version));
    EXPECT(version == cu_version, "CUDA version %d, driver %d", version, cu_version);
    unsigned int current = 9, pending = 9, clock = 0;
    NV(nvmlDeviceGetMigMode(device, &current, &pending));
    EXPECT(current == NVML_DEVICE_MIG_DISABLE && pending == NVML_DEVICE_MIG_DISABLE, "MIG %u/%u", current, pending);
    NV(nvmlDeviceGetMaxClockInfo(device, NVML_CLOCK_SM, &clock));
    int cu_clock = 0;
    CU(cuDeviceGetAttribute(&cu_clock, CU_DEVICE_ATTRIBUTE_CLOCK_RATE, 0));
    EXPECT(clock == (unsigned)cu_clock / 1000, "max SM clock %u MHz, CUDA %d kHz", clock, cu_clock);

    /* Unsupported entry points fail cleanly, whatever their arguments. */
    unsigned int speed = 12345;
    nvmlReturn_t r = nvmlDeviceGetFanSpeed(device, &speed);
    EXPECT(r == NVML_ERROR_NOT_SUPPORTED && speed == 12345, "nvmlDeviceGetFanSpeed -> %d", (int)r);
    unsigned long long energy = 0;
    r = nvmlDeviceGetTotalEnergyConsumption(device, &energy);
    EXPECT(r == NVML_ERROR_NOT_SUPPORTED, "nvmlDeviceGetTotalEnergyConsumption -> %d", (int)r);
    r = nvmlDeviceSetPersistenceMode(device, NVML_FEATURE_ENABLED);
    EXPECT(r == NVML_ERROR_NOT_SUPPORTED, "nvmlDeviceSetPersistenceMode -> %d", (int)r);
    printf("unsupported: %s\n", nvmlErrorString(NVML_ERROR_NOT_SUPPORTED));

    /* Memory: NVML follows the allocations of this tenant. */
    CUdevice cu_device;
    CUcontext context;
    CU(cuDeviceGet(&cu_device, 0));
    CU(cuDevicePrimaryCtxRetain(&context, cu_device));
    CU(cuCtxSetCurrent(context));
    compare_memory(device, "before", 0);
    CUdeviceptr blocks[3];
    unsigned long long held = 0;
    for (int i = 0; i < 3; i++) {
        CU(cuMemAlloc(&blocks[i], (size_t)(i + 1) * 64 << 20));
        held += (unsigned long long)(i + 1) * 64 << 20;
        char when[32];
        snprintf(when, sizeof when, "allocation %d", i + 1);
        compare_memory(device, when, held);
    }
    CU(cuMemFree(blocks[1]));
    held -= 128ULL << 20;
    compare_memory(device, "after a free", held);

    /* Utilization: the share of the last second this tenant's kernels ran. */
    CUmodule module;
    CUfunction spin;
    CU(cuModuleLoadData(&module, spin_ptx));
    CU(cuModuleGetFunction(&spin, module, "spin"));
    nvmlUtilization_t idle;
    NV(nvmlDeviceGetUtilizationRates(device, &idle));
    unsigned int busy = busy_utilization(device, spin, 1.5);
    printf("utilization: busy %s\n", busy >= 50 ? ">= 50%" : "< 50%");
    EXPECT(busy >= 50 && busy <= 100, "utilization %u%% while kernels run back to back", busy);
    usleep(1300 * 1000);
    nvmlUtilization_t after;
    NV(nvmlDeviceGetUtilizationRates(device, &after));
    printf("utilization: idle %s\n", after.gpu <= 10 ? "<= 10%" : "> 10%");
    EXPECT(after.gpu <= 10, "utilization %u%% a second after the last kernel", after.gpu);
    unsigned int temperature = 0, power = 0, limit = 0;
    NV(nvmlDeviceGetTemperature(device, NVML_TEMPERATURE_GPU, &temperature));  /* deprecated in NVML 13, still served */
    NV(nvmlDeviceGetPowerUsage(device, &power));
    NV(nvmlDeviceGetEnforcedPowerLimit(device, &limit));
    EXPECT(power > 0 && power <= limit, "power %u mW, limit %u mW", power, limit);

    CU(cuMemFree(blocks[0]));
    CU(cuMemFree(blocks[2]));
    compare_memory(device, "after freeing everything", 0);
    NV(nvmlShutdown());
    NV(nvmlDeviceGetCount(&count));  /* still initialized once */
    NV(nvmlShutdown());
    r = nvmlDeviceGetCount(&count);
    EXPECT(r == NVML_ERROR_UNINITIALIZED, "after the last nvmlShutdown -> %d", (int)r);
    printf("nvml_slice: %d failures\n", failures);
    return failures == 0 ? 0 : 1;
}
