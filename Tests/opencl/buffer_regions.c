/* Parts of buffers: sub-buffers (their info, reads and writes through them, a kernel on one
 * changing its buffer, a misaligned origin and a region past the end refused) and rectangular
 * copies between buffers (2-D with the default pitches, 3-D with explicit ones, a region past
 * the end refused), and rectangles written from and read into host memory (3-D, pitches on both
 * sides), the results checked element by element. */
#include "cl_test.h"

enum { N = 4096 };

static const char *source = "__kernel void mark(__global int *data) { data[get_global_id(0)] = -1 - (int)get_global_id(0); }\n";

int main(void) {
    cl_test_env env = cl_test_open(0);
    static int host[N], result[N];
    for (int i = 0; i < N; i++) host[i] = i;
    cl_mem buffer = cl_test_buffer(&env, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof host, host);

    cl_uint align_bits = 0;
    CHECK(clGetDeviceInfo(env.device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits, NULL));
    size_t align = align_bits / 8;
    printf("the alignment is a whole number of ints: %s\n", align % sizeof(int) == 0 && align <= N * sizeof(int) / 4 ? "yes" : "no");

    cl_buffer_region region = {align, 256 * sizeof(int)};
    cl_int status = CL_SUCCESS;
    cl_mem sub = clCreateSubBuffer(buffer, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &region, &status);
    CHECK(status);
    cl_mem parent = NULL;
    size_t offset = 0, size = 0;
    CHECK(clGetMemObjectInfo(sub, CL_MEM_ASSOCIATED_MEMOBJECT, sizeof parent, &parent, NULL));
    CHECK(clGetMemObjectInfo(sub, CL_MEM_OFFSET, sizeof offset, &offset, NULL));
    CHECK(clGetMemObjectInfo(sub, CL_MEM_SIZE, sizeof size, &size, NULL));
    EXPECT_TRUE("the sub-buffer's buffer, offset and size", parent == buffer && offset == align && size == region.size);

    size_t first = align / sizeof(int);
    CHECK(clEnqueueReadBuffer(env.queue, sub, CL_TRUE, 0, region.size, result, 0, NULL, NULL));
    int right = 1;
    for (int i = 0; i < 256; i++) right &= result[i] == (int)first + i;
    EXPECT_TRUE("a read through the sub-buffer", right);

    int seven[4] = {7, 7, 7, 7};
    CHECK(clEnqueueWriteBuffer(env.queue, sub, CL_TRUE, 4 * sizeof(int), sizeof seven, seven, 0, NULL, NULL));
    cl_program program = cl_test_build(&env, source, "");
    cl_kernel mark = cl_test_kernel(program, "mark");
    CHECK(clSetKernelArg(mark, 0, sizeof(cl_mem), &sub));
    size_t global = 4;
    CHECK(clEnqueueNDRangeKernel(env.queue, mark, 1, NULL, &global, NULL, 0, NULL, NULL));
    CHECK(clEnqueueReadBuffer(env.queue, buffer, CL_TRUE, 0, sizeof result, result, 0, NULL, NULL));
    right = 1;
    for (int i = 0; i < N; i++) {
        int expected = i;
        if (i >= (int)first && i < (int)first + 4) expected = -1 - (i - (int)first);
        else if (i >= (int)first + 4 && i < (int)first + 8) expected = 7;
        right &= result[i] == expected;
    }
    EXPECT_TRUE("the kernel and the write through the sub-buffer changed the buffer there only", right);

    cl_buffer_region misaligned = {align + 1, 16};
    cl_mem bad = clCreateSubBuffer(buffer, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &misaligned, &status);
    printf("a misaligned origin: %s, %s\n", bad == NULL ? "NULL" : "an object", cl_error_name(status));
    if (bad != NULL || status != CL_MISALIGNED_SUB_BUFFER_OFFSET) cl_test_failures++;
    cl_buffer_region past = {0, sizeof host + 4};
    bad = clCreateSubBuffer(buffer, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &past, &status);
    printf("a region past the end: %s, %s\n", bad == NULL ? "NULL" : "an object", cl_error_name(status));
    if (bad != NULL || status != CL_INVALID_VALUE) cl_test_failures++;
    CHECK(clReleaseKernel(mark));
    CHECK(clReleaseProgram(program));
    CHECK(clReleaseMemObject(sub));

    /* 2-D: a 3x2 block of ints from (1, 1) of a 8-int-wide source to (2, 3) of a 6-int-wide
     * destination, default pitches in bytes given explicitly for the rows. */
    for (int i = 0; i < N; i++) host[i] = 0;
    cl_mem target = cl_test_buffer(&env, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof host, host);
    for (int i = 0; i < N; i++) host[i] = i;
    CHECK(clEnqueueWriteBuffer(env.queue, buffer, CL_TRUE, 0, sizeof host, host, 0, NULL, NULL));
    size_t source_origin[3] = {1 * sizeof(int), 1, 0}, target_origin[3] = {2 * sizeof(int), 3, 0};
    size_t block[3] = {3 * sizeof(int), 2, 1};
    CHECK(clEnqueueCopyBufferRect(env.queue, buffer, target, source_origin, target_origin, block, 8 * sizeof(int), 0,
                                  6 * sizeof(int), 0, 0, NULL, NULL));
    CHECK(clEnqueueReadBuffer(env.queue, target, CL_TRUE, 0, sizeof result, result, 0, NULL, NULL));
    right = 1;
    for (int i = 0; i < N; i++) {
        int row = i / 6, column = i % 6, expected = 0;
        if (i < 6 * 8 && row >= 3 && row < 5 && column >= 2 && column < 5) expected = (row - 3 + 1) * 8 + (column - 2 + 1);
        right &= result[i] == expected;
    }
    EXPECT_TRUE("a 2-D rectangle copied, nothing else touched", right);

    /* 3-D: 2x2x2 ints from (0, 0, 1) of a 4x4xN source to (1, 1, 0) of a 4x4xN destination. */
    cl_event copied;
    size_t cube_from[3] = {0, 0, 1}, cube_to[3] = {1 * sizeof(int), 1, 0}, cube[3] = {2 * sizeof(int), 2, 2};
    CHECK(clEnqueueCopyBufferRect(env.queue, buffer, target, cube_from, cube_to, cube, 4 * sizeof(int), 16 * sizeof(int),
                                  4 * sizeof(int), 16 * sizeof(int), 0, NULL, &copied));
    CHECK(clWaitForEvents(1, &copied));
    cl_command_type type = 0;
    CHECK(clGetEventInfo(copied, CL_EVENT_COMMAND_TYPE, sizeof type, &type, NULL));
    EXPECT_TRUE("the event is CL_COMMAND_COPY_BUFFER_RECT", type == CL_COMMAND_COPY_BUFFER_RECT);
    CHECK(clReleaseEvent(copied));
    CHECK(clEnqueueReadBuffer(env.queue, target, CL_TRUE, 0, sizeof result, result, 0, NULL, NULL));
    right = 1;
    for (int z = 0; z < 2; z++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 2; x++) right &= result[z * 16 + (y + 1) * 4 + x + 1] == (z + 1) * 16 + y * 4 + x;
    EXPECT_TRUE("a 3-D box copied", right);
    size_t far_origin[3] = {0, 0, N / 16};
    EXPECT("a rectangle past the end",
           clEnqueueCopyBufferRect(env.queue, buffer, target, far_origin, cube_to, cube, 4 * sizeof(int), 16 * sizeof(int),
                                   4 * sizeof(int), 16 * sizeof(int), 0, NULL, NULL),
           CL_INVALID_VALUE);

    /* Host rectangles: a 3x2x2 box of ints from a 5x4xN host array written to (1, 2, 1) of the
     * 4x4xN target, then read back into (2, 1, 0) of a zeroed 6x3xN host array. */
    static int box_source[5 * 4 * 4], box_back[6 * 3 * 4];
    for (int i = 0; i < 5 * 4 * 4; i++) box_source[i] = 1000 + i;
    size_t host_from[3] = {1 * sizeof(int), 1, 1}, buffer_at[3] = {1 * sizeof(int), 2, 1}, box[3] = {3 * sizeof(int), 2, 2};
    CHECK(clEnqueueWriteBufferRect(env.queue, target, CL_TRUE, buffer_at, host_from, box, 4 * sizeof(int), 16 * sizeof(int),
                                   5 * sizeof(int), 20 * sizeof(int), box_source, 0, NULL, NULL));
    size_t host_to[3] = {2 * sizeof(int), 1, 0};
    cl_event read_box;
    CHECK(clEnqueueReadBufferRect(env.queue, target, CL_TRUE, buffer_at, host_to, box, 4 * sizeof(int), 16 * sizeof(int),
                                  6 * sizeof(int), 18 * sizeof(int), box_back, 0, NULL, &read_box));
    CHECK(clGetEventInfo(read_box, CL_EVENT_COMMAND_TYPE, sizeof type, &type, NULL));
    EXPECT_TRUE("the event is CL_COMMAND_READ_BUFFER_RECT", type == CL_COMMAND_READ_BUFFER_RECT);
    CHECK(clReleaseEvent(read_box));
    right = 1;
    for (int i = 0; i < 6 * 3 * 4; i++) {
        int z = i / 18, y = (i / 6) % 3, x = i % 6, expected = 0;
        if (z < 2 && y >= 1 && y < 3 && x >= 2 && x < 5) expected = 1000 + (z + 1) * 20 + (y - 1 + 1) * 5 + (x - 2 + 1);
        right &= box_back[i] == expected;
    }
    EXPECT_TRUE("a 3-D box written from host memory and read back into another layout", right);

    CHECK(clReleaseMemObject(target));
    CHECK(clReleaseMemObject(buffer));
    cl_test_close(&env);
    return cl_test_finish();
}
