/* cuPointerGetAttributes on device, interior, host-allocated and unknown pointers; the stream
 * capture queries (no stream ever captures here) and the per-thread capture mode; handles that
 * read as positive addresses (bindings keep them as signed integers). */
#include <stdint.h>

#include "xpu_test.h"

static void print_attributes(const char *label, CUdeviceptr pointer, CUcontext expected_context, CUdevice device) {
    CUcontext context = (CUcontext)(uintptr_t)0x1;
    unsigned int memory_type = 99;
    CUdeviceptr device_pointer = 1;
    void *host_pointer = (void *)(uintptr_t)0x1;
    int managed = 0x01010101; /* a boolean: all four bytes written (the runtime reads an int) */
    int ordinal = 99;
    CUdeviceptr start = 1;
    size_t size = 1;
    CUpointer_attribute attributes[] = {
        CU_POINTER_ATTRIBUTE_CONTEXT, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_DEVICE_POINTER,
        CU_POINTER_ATTRIBUTE_HOST_POINTER, CU_POINTER_ATTRIBUTE_IS_MANAGED, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
        CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, CU_POINTER_ATTRIBUTE_RANGE_SIZE,
    };
    void *data[] = {&context, &memory_type, &device_pointer, &host_pointer, &managed, &ordinal, &start, &size};
    char name[128];
    snprintf(name, sizeof name, "%s: cuPointerGetAttributes", label);
    EXPECT(name, cuPointerGetAttributes(8, attributes, data, pointer), CUDA_SUCCESS);
    printf("%s: memory type %u, managed %d, context %s, ordinal %s\n", label, memory_type, managed,
           context == expected_context ? "expected" : (context == NULL ? "none" : "other"),
           ordinal == (int)device ? "expected" : (ordinal == 0 ? "zero" : "other"));
    printf("%s: device pointer %s, host pointer %s, range start %s, range size %zu\n", label,
           device_pointer == pointer ? "same" : (device_pointer == 0 ? "zero" : "other"),
           host_pointer == (void *)(uintptr_t)pointer ? "same" : (host_pointer == NULL ? "zero" : "other"),
           start == 0 ? "zero" : (start <= pointer ? "at or below" : "above"), size);
    EXPECT_TRUE("not managed, as a whole int", managed == 0);
}

int main(void) {
    CUcontext ctx;
    CUdevice dev = xpu_setup_primary(&ctx);

    CUdeviceptr memory;
    CHECK(cuMemAlloc(&memory, 4096));
    print_attributes("device", memory, ctx, dev);
    print_attributes("interior", memory + 100, ctx, dev);
    void *host;
    CHECK(cuMemAllocHost(&host, 8192));
    print_attributes("host", (CUdeviceptr)(uintptr_t)host, ctx, dev);
    int stack = 0;
    print_attributes("unknown", (CUdeviceptr)(uintptr_t)&stack, ctx, dev);

    unsigned long long buffer_id;
    CUpointer_attribute unsupported = CU_POINTER_ATTRIBUTE_BUFFER_ID;
    void *buffer_data[] = {&buffer_id};
    EXPECT("BUFFER_ID", cuPointerGetAttributes(1, &unsupported, buffer_data, memory), CUDA_ERROR_NOT_SUPPORTED);
    CUpointer_attribute type_attribute = CU_POINTER_ATTRIBUTE_MEMORY_TYPE;
    void *null_data[] = {NULL};
    EXPECT("NULL data slot", cuPointerGetAttributes(1, &type_attribute, null_data, memory), CUDA_ERROR_INVALID_VALUE);
    EXPECT("no attributes", cuPointerGetAttributes(0, NULL, NULL, memory), CUDA_SUCCESS);

    CUstream stream;
    CHECK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
    EXPECT_TRUE("stream handle reads as a positive address", (intptr_t)stream > 0);
    CUevent event;
    CHECK(cuEventCreate(&event, 0));
    EXPECT_TRUE("event handle reads as a positive address", (intptr_t)event > 0);
    CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_ACTIVE;
    EXPECT("cuStreamIsCapturing(stream)", cuStreamIsCapturing(stream, &status), CUDA_SUCCESS);
    EXPECT_TRUE("stream not capturing", status == CU_STREAM_CAPTURE_STATUS_NONE);
    status = CU_STREAM_CAPTURE_STATUS_ACTIVE;
    EXPECT("cuStreamIsCapturing(legacy)", cuStreamIsCapturing(CU_STREAM_LEGACY, &status), CUDA_SUCCESS);
    EXPECT_TRUE("legacy stream not capturing", status == CU_STREAM_CAPTURE_STATUS_NONE);
    EXPECT("cuStreamIsCapturing(NULL status)", cuStreamIsCapturing(stream, NULL), CUDA_ERROR_INVALID_VALUE);

    cuuint64_t id = 42;
    CUgraph graph;
    const CUgraphNode *dependencies;
    const CUgraphEdgeData *edges;
    size_t count;
    status = CU_STREAM_CAPTURE_STATUS_ACTIVE;
    EXPECT("cuStreamGetCaptureInfo", cuStreamGetCaptureInfo(stream, &status, &id, &graph, &dependencies, &edges, &count),
           CUDA_SUCCESS);
    EXPECT_TRUE("capture info: none, id 0", status == CU_STREAM_CAPTURE_STATUS_NONE && id == 0);

    CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
    EXPECT("exchange capture mode", cuThreadExchangeStreamCaptureMode(&mode), CUDA_SUCCESS);
    EXPECT_TRUE("the thread's mode was global", mode == CU_STREAM_CAPTURE_MODE_GLOBAL);
    EXPECT("exchange it back", cuThreadExchangeStreamCaptureMode(&mode), CUDA_SUCCESS);
    EXPECT_TRUE("the mode set was relaxed", mode == CU_STREAM_CAPTURE_MODE_RELAXED);
    CUstreamCaptureMode bad = (CUstreamCaptureMode)7;
    EXPECT("unknown capture mode", cuThreadExchangeStreamCaptureMode(&bad), CUDA_ERROR_INVALID_VALUE);

    CHECK(cuEventDestroy(event));
    CHECK(cuStreamDestroy(stream));
    CHECK(cuStreamSynchronize(NULL));
    EXPECT("cuStreamIsCapturing(destroyed)", cuStreamIsCapturing(stream, &status), CUDA_ERROR_INVALID_HANDLE);
    CHECK(cuMemFreeHost(host));
    CHECK(cuMemFree(memory));
    xpu_teardown_primary(dev);
    return xpu_finish();
}
