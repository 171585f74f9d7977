/* Calls pyopencl makes around programs, buffers and the platform: clCreateKernelsInProgram
 * (before the build: CL_INVALID_PROGRAM_EXECUTABLE; after: one kernel per function, by name,
 * each runnable), a program whose source is larger than any string field of the protocol
 * (64 KiB, mostly comments) built and run, clEnqueueMigrateMemObjects (its event's command
 * type, flags checked, the buffer's contents kept), separate compilation (clCompileProgram with
 * an included header program, clLinkProgram of two compiled programs, the linked kernel run; a
 * compile error and an unresolved function refused), clUnloadPlatformCompiler, and
 * clGetSupportedImageFormats when the device has images (the count, and the list's size). */
#include "cl_test.h"

#include <string.h>

static const char *two_kernels =
    "__kernel void twice(__global int *data) { data[get_global_id(0)] *= 2; }\n"
    "__kernel void plus_one(__global int *data) { data[get_global_id(0)] += 1; }\n";

enum { N = 256 };

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(void) {
    cl_test_env env = cl_test_open(0);
    cl_int status = CL_SUCCESS;

    cl_program program = clCreateProgramWithSource(env.context, 1, &two_kernels, NULL, &status);
    CHECK(status);
    cl_uint count = 99;
    EXPECT("clCreateKernelsInProgram before the build", clCreateKernelsInProgram(program, 0, NULL, &count),
           CL_INVALID_PROGRAM_EXECUTABLE);
    CHECK(clBuildProgram(program, 1, &env.device, "", NULL, NULL));
    CHECK(clCreateKernelsInProgram(program, 0, NULL, &count));
    printf("kernels in the program: %u\n", count);
    cl_kernel kernels[2] = {NULL, NULL};
    EXPECT("clCreateKernelsInProgram with too little room", clCreateKernelsInProgram(program, 1, kernels, NULL),
           CL_INVALID_VALUE);
    CHECK(clCreateKernelsInProgram(program, 2, kernels, NULL));
    char names[2][64];
    char *sorted[2] = {names[0], names[1]};
    for (int i = 0; i < 2; i++) CHECK(clGetKernelInfo(kernels[i], CL_KERNEL_FUNCTION_NAME, sizeof names[i], names[i], NULL));
    qsort(sorted, 2, sizeof sorted[0], compare_names);
    printf("their names: %s %s\n", sorted[0], sorted[1]);

    static int host[N], result[N];
    for (int i = 0; i < N; i++) host[i] = i;
    cl_mem buffer = cl_test_buffer(&env, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof host, host);
    size_t global = N;
    for (int i = 0; i < 2; i++) {
        CHECK(clSetKernelArg(kernels[i], 0, sizeof(cl_mem), &buffer));
        CHECK(clEnqueueNDRangeKernel(env.queue, kernels[i], 1, NULL, &global, NULL, 0, NULL, NULL));
    }
    CHECK(clEnqueueReadBuffer(env.queue, buffer, CL_TRUE, 0, sizeof result, result, 0, NULL, NULL));
    char first[64];
    CHECK(clGetKernelInfo(kernels[0], CL_KERNEL_FUNCTION_NAME, sizeof first, first, NULL));
    int twice_first = strcmp(first, "twice") == 0, right = 1;
    for (int i = 0; i < N; i++) right &= result[i] == (twice_first ? i * 2 + 1 : (i + 1) * 2);
    EXPECT_TRUE("both kernels ran", right);
    for (int i = 0; i < 2; i++) CHECK(clReleaseKernel(kernels[i]));
    CHECK(clReleaseProgram(program));

    /* 64 KiB of source: comments around one kernel. */
    enum { SOURCE_BYTES = 64 * 1024 };
    char *large = malloc(SOURCE_BYTES + 1);
    const char *kernel_text = "__kernel void negate(__global int *data) { data[get_global_id(0)] = -data[get_global_id(0)]; }\n";
    size_t used = 0;
    while (used + 80 < SOURCE_BYTES - strlen(kernel_text)) used += (size_t)sprintf(large + used, "// filler line %06zu of a long program source, to pass 4 KiB many times\n", used);
    strcpy(large + used, kernel_text);
    printf("large source: more than 60 KiB: %s\n", strlen(large) > 60 * 1024 ? "yes" : "no");
    cl_program big = cl_test_build(&env, large, "");
    cl_kernel negate = cl_test_kernel(big, "negate");
    CHECK(clSetKernelArg(negate, 0, sizeof(cl_mem), &buffer));
    CHECK(clEnqueueNDRangeKernel(env.queue, negate, 1, NULL, &global, NULL, 0, NULL, NULL));
    CHECK(clFinish(env.queue));
    size_t source_size = 0;
    CHECK(clGetProgramInfo(big, CL_PROGRAM_SOURCE, 0, NULL, &source_size));
    EXPECT_TRUE("CL_PROGRAM_SOURCE has the whole source", source_size == strlen(large) + 1);
    CHECK(clReleaseKernel(negate));
    CHECK(clReleaseProgram(big));
    free(large);

    /* Migration: an event of its own type; the contents stay. */
    cl_event migrated;
    CHECK(clEnqueueMigrateMemObjects(env.queue, 1, &buffer, CL_MIGRATE_MEM_OBJECT_HOST, 0, NULL, &migrated));
    CHECK(clWaitForEvents(1, &migrated));
    cl_command_type type = 0;
    CHECK(clGetEventInfo(migrated, CL_EVENT_COMMAND_TYPE, sizeof type, &type, NULL));
    EXPECT_TRUE("the migration's event is CL_COMMAND_MIGRATE_MEM_OBJECTS", type == CL_COMMAND_MIGRATE_MEM_OBJECTS);
    CHECK(clReleaseEvent(migrated));
    CHECK(clEnqueueMigrateMemObjects(env.queue, 1, &buffer, 0, 0, NULL, NULL));
    EXPECT("clEnqueueMigrateMemObjects with unknown flags", clEnqueueMigrateMemObjects(env.queue, 1, &buffer, 1 << 7, 0, NULL, NULL),
           CL_INVALID_VALUE);
    EXPECT("clEnqueueMigrateMemObjects of no objects", clEnqueueMigrateMemObjects(env.queue, 0, NULL, 0, 0, NULL, NULL),
           CL_INVALID_VALUE);
    CHECK(clEnqueueReadBuffer(env.queue, buffer, CL_TRUE, 0, sizeof result, result, 0, NULL, NULL));
    right = 1;
    for (int i = 0; i < N; i++) right &= result[i] == -(twice_first ? i * 2 + 1 : (i + 1) * 2);
    EXPECT_TRUE("the buffer's contents after the migrations", right);
    CHECK(clReleaseMemObject(buffer));

    /* Separate compilation: a function in one program, a header in another, a kernel using both. */
    const char *helper_source = "int offset_of(int i) { return i + 40; }\n";
    const char *header_source = "#define SCALE 2\n";
    const char *main_source =
        "#include \"scale.h\"\n"
        "int offset_of(int i);\n"
        "__kernel void combine(__global int *data) { int i = get_global_id(0); data[i] = offset_of(i) * SCALE; }\n";
    cl_program helper = clCreateProgramWithSource(env.context, 1, &helper_source, NULL, &status);
    CHECK(status);
    cl_program header = clCreateProgramWithSource(env.context, 1, &header_source, NULL, &status);
    CHECK(status);
    cl_program main_program = clCreateProgramWithSource(env.context, 1, &main_source, NULL, &status);
    CHECK(status);
    CHECK(clCompileProgram(helper, 1, &env.device, "", 0, NULL, NULL, NULL, NULL));
    const char *header_name = "scale.h";
    CHECK(clCompileProgram(main_program, 1, &env.device, "", 1, &header, &header_name, NULL, NULL));
    cl_program parts[2] = {helper, main_program};
    cl_program linked = clLinkProgram(env.context, 1, &env.device, "", 2, parts, NULL, NULL, &status);
    CHECK(status);
    cl_kernel combine = cl_test_kernel(linked, "combine");
    cl_mem out = cl_test_buffer(&env, CL_MEM_READ_WRITE, sizeof result, NULL);
    CHECK(clSetKernelArg(combine, 0, sizeof(cl_mem), &out));
    CHECK(clEnqueueNDRangeKernel(env.queue, combine, 1, NULL, &global, NULL, 0, NULL, NULL));
    CHECK(clEnqueueReadBuffer(env.queue, out, CL_TRUE, 0, sizeof result, result, 0, NULL, NULL));
    right = 1;
    for (int i = 0; i < N; i++) right &= result[i] == (i + 40) * 2;
    EXPECT_TRUE("the linked kernel ran with the other program's function and the header", right);
    CHECK(clReleaseKernel(combine));
    CHECK(clReleaseProgram(linked));
    CHECK(clReleaseMemObject(out));
    const char *broken_source = "__kernel void broken(__global int *data) { data[0] = undeclared; }\n";
    cl_program broken = clCreateProgramWithSource(env.context, 1, &broken_source, NULL, &status);
    CHECK(status);
    EXPECT("clCompileProgram of a source with an error", clCompileProgram(broken, 1, &env.device, "", 0, NULL, NULL, NULL, NULL),
           CL_COMPILE_PROGRAM_FAILURE);
    cl_program alone = main_program;
    cl_program unresolved = clLinkProgram(env.context, 1, &env.device, "", 1, &alone, NULL, NULL, &status);
    printf("clLinkProgram with a function missing: %s\n", cl_error_name(status));
    if (status != CL_LINK_PROGRAM_FAILURE) cl_test_failures++;
    if (unresolved != NULL) CHECK(clReleaseProgram(unresolved));
    CHECK(clReleaseProgram(broken));
    CHECK(clReleaseProgram(helper));
    CHECK(clReleaseProgram(header));
    CHECK(clReleaseProgram(main_program));

    EXPECT("clUnloadPlatformCompiler", clUnloadPlatformCompiler(env.platform), CL_SUCCESS);

    cl_bool images = CL_FALSE;
    CHECK(clGetDeviceInfo(env.device, CL_DEVICE_IMAGE_SUPPORT, sizeof images, &images, NULL));
    if (images) {
        cl_uint formats = 0;
        CHECK(clGetSupportedImageFormats(env.context, CL_MEM_READ_ONLY, CL_MEM_OBJECT_IMAGE2D, 0, NULL, &formats));
        EXPECT_TRUE("2-D image formats to read: some", formats > 0);
        cl_image_format *list = calloc(formats + 1, sizeof *list);
        list[formats].image_channel_order = 0xdead;
        cl_uint again = 0;
        CHECK(clGetSupportedImageFormats(env.context, CL_MEM_READ_ONLY, CL_MEM_OBJECT_IMAGE2D, formats, list, &again));
        EXPECT_TRUE("the list has as many, and no more", again == formats && list[formats].image_channel_order == 0xdead);
        printf("the first format: order 0x%x, type 0x%x\n", list[0].image_channel_order, list[0].image_channel_data_type);
        EXPECT("clGetSupportedImageFormats into a list of 0 entries",
               clGetSupportedImageFormats(env.context, CL_MEM_READ_ONLY, CL_MEM_OBJECT_IMAGE2D, 0, list, NULL), CL_INVALID_VALUE);
        free(list);
    }
    cl_test_close(&env);
    return cl_test_finish();
}
