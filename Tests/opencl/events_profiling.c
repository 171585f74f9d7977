/* Events and profiling on a queue with CL_QUEUE_PROFILING_ENABLE: a non-blocking write, a kernel
 * and a non-blocking read chained by wait lists; clWaitForEvents; each event's command type,
 * status (CL_COMPLETE) and queue; profiling stamps in order (queued <= submit <= start <= end,
 * and the read starts after the kernel ends); a user event that holds a kernel back until it is
 * set complete; a marker; and profiling info of a user event (CL_PROFILING_INFO_NOT_AVAILABLE).
 * Times are compared, never printed. */
#include "cl_test.h"

static const char *source =
    "__kernel void scale(__global int *data, const int factor) {\n"
    "    size_t i = get_global_id(0);\n"
    "    data[i] = data[i] * factor + (int)i;\n"
    "}\n";

static cl_ulong stamp(cl_event event, cl_profiling_info what) {
    cl_ulong value = 0;
    CHECK(clGetEventProfilingInfo(event, what, sizeof value, &value, NULL));
    return value;
}

static void describe(const char *label, cl_event event, cl_command_queue queue) {
    cl_command_type type = 0;
    cl_int status = -1;
    cl_command_queue owner = NULL;
    CHECK(clGetEventInfo(event, CL_EVENT_COMMAND_TYPE, sizeof type, &type, NULL));
    CHECK(clGetEventInfo(event, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL));
    CHECK(clGetEventInfo(event, CL_EVENT_COMMAND_QUEUE, sizeof owner, &owner, NULL));
    printf("%s: command type 0x%x, status %s, on the queue: %s\n", label, type,
           status == CL_COMPLETE ? "CL_COMPLETE" : "not complete", owner == queue ? "yes" : "no");
    if (status != CL_COMPLETE || owner != queue) cl_test_failures++;
    cl_ulong queued = stamp(event, CL_PROFILING_COMMAND_QUEUED);
    cl_ulong submit = stamp(event, CL_PROFILING_COMMAND_SUBMIT);
    cl_ulong start = stamp(event, CL_PROFILING_COMMAND_START);
    cl_ulong end = stamp(event, CL_PROFILING_COMMAND_END);
    EXPECT_TRUE("  queued <= submit <= start <= end", queued <= submit && submit <= start && start <= end);
    EXPECT_TRUE("  end is after 0", end > 0);
}

int main(void) {
    cl_test_env env = cl_test_open(CL_QUEUE_PROFILING_ENABLE);
    cl_command_queue_properties properties = 0;
    CHECK(clGetCommandQueueInfo(env.queue, CL_QUEUE_PROPERTIES, sizeof properties, &properties, NULL));
    EXPECT_TRUE("the queue profiles", (properties & CL_QUEUE_PROFILING_ENABLE) != 0);

    cl_program program = cl_test_build(&env, source, "");
    cl_kernel kernel = cl_test_kernel(program, "scale");
    enum { N = 1 << 16 };
    static int host[N], result[N];
    for (int i = 0; i < N; i++) host[i] = i % 100;
    cl_mem buffer = cl_test_buffer(&env, CL_MEM_READ_WRITE, sizeof host, NULL);

    cl_event write, run, read;
    CHECK(clEnqueueWriteBuffer(env.queue, buffer, CL_FALSE, 0, sizeof host, host, 0, NULL, &write));
    int factor = 3;
    CHECK(clSetKernelArg(kernel, 0, sizeof(cl_mem), &buffer));
    CHECK(clSetKernelArg(kernel, 1, sizeof(int), &factor));
    size_t global = N;
    CHECK(clEnqueueNDRangeKernel(env.queue, kernel, 1, NULL, &global, NULL, 1, &write, &run));
    CHECK(clEnqueueReadBuffer(env.queue, buffer, CL_FALSE, 0, sizeof result, result, 1, &run, &read));
    CHECK(clWaitForEvents(1, &read));
    int wrong = 0;
    for (int i = 0; i < N; i++) wrong += result[i] != host[i] * 3 + i;
    printf("write -> scale -> read: %d wrong, hash %016llx\n", wrong, cl_test_hash(result, sizeof result));
    if (wrong) cl_test_failures++;
    describe("write", write, env.queue);
    describe("kernel", run, env.queue);
    describe("read", read, env.queue);
    EXPECT_TRUE("the kernel starts after the write ends", stamp(run, CL_PROFILING_COMMAND_START) >= stamp(write, CL_PROFILING_COMMAND_END));
    EXPECT_TRUE("the read starts after the kernel ends", stamp(read, CL_PROFILING_COMMAND_START) >= stamp(run, CL_PROFILING_COMMAND_END));

    /* A user event gates a kernel: it stays queued until the event is set complete. */
    cl_int status = CL_SUCCESS;
    cl_event gate = clCreateUserEvent(env.context, &status);
    CHECK(status);
    cl_int gate_status = -1;
    CHECK(clGetEventInfo(gate, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof gate_status, &gate_status, NULL));
    EXPECT_TRUE("a new user event is CL_SUBMITTED", gate_status == CL_SUBMITTED);
    cl_event gated;
    factor = 2;
    CHECK(clSetKernelArg(kernel, 1, sizeof(int), &factor));
    CHECK(clEnqueueNDRangeKernel(env.queue, kernel, 1, NULL, &global, NULL, 1, &gate, &gated));
    CHECK(clFlush(env.queue));
    cl_int gated_status = -1;
    CHECK(clGetEventInfo(gated, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof gated_status, &gated_status, NULL));
    EXPECT_TRUE("the gated kernel has not run", gated_status != CL_COMPLETE);
    CHECK(clSetUserEventStatus(gate, CL_COMPLETE));
    CHECK(clWaitForEvents(1, &gated));
    CHECK(clEnqueueReadBuffer(env.queue, buffer, CL_TRUE, 0, sizeof result, result, 0, NULL, NULL));
    wrong = 0;
    for (int i = 0; i < N; i++) wrong += result[i] != (host[i] * 3 + i) * 2 + i;
    printf("after the gate opened: %d wrong\n", wrong);
    if (wrong) cl_test_failures++;
    cl_ulong ignored = 0;
    EXPECT("profiling info of a user event",
           clGetEventProfilingInfo(gate, CL_PROFILING_COMMAND_START, sizeof ignored, &ignored, NULL),
           CL_PROFILING_INFO_NOT_AVAILABLE);

    cl_event marker;
    CHECK(clEnqueueMarkerWithWaitList(env.queue, 1, &gated, &marker));
    CHECK(clFinish(env.queue));
    cl_command_type marker_type = 0;
    CHECK(clGetEventInfo(marker, CL_EVENT_COMMAND_TYPE, sizeof marker_type, &marker_type, NULL));
    EXPECT_TRUE("the marker's type is CL_COMMAND_MARKER", marker_type == CL_COMMAND_MARKER);
    EXPECT("waiting on no events", clWaitForEvents(0, NULL), CL_INVALID_VALUE);

    cl_event events[] = {write, run, read, gate, gated, marker};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) CHECK(clReleaseEvent(events[i]));
    CHECK(clReleaseMemObject(buffer));
    CHECK(clReleaseKernel(kernel));
    CHECK(clReleaseProgram(program));
    cl_test_close(&env);
    return cl_test_finish();
}
