/* Through the ICD only (a platform serves these): calls the library does not serve that return
 * an object give NULL and set errcode_ret to CL_INVALID_OPERATION, whether errcode_ret comes in
 * a register (clCreateImage, 6 parameters; clCreatePipe; clCreateSamplerWithProperties) or on
 * the stack (clCreateImage2D, 8; clEnqueueMapImage, 12); clSVMAlloc, which has none, gives NULL. */
#define CL_USE_DEPRECATED_OPENCL_1_1_APIS
#include "cl_test.h"

static void expect_refused(const char *call, void *object, cl_int status) {
    printf("%s: %s, %s\n", call, object == NULL ? "NULL" : "an object", cl_error_name(status));
    if (object != NULL || status != CL_INVALID_OPERATION) cl_test_failures++;
}

int main(void) {
    cl_test_env env = cl_test_open(0);
    cl_int status = CL_SUCCESS;
    cl_image_format format = {CL_RGBA, CL_UNORM_INT8};
    cl_image_desc description = {.image_type = CL_MEM_OBJECT_IMAGE2D, .image_width = 16, .image_height = 16};
    cl_mem image = clCreateImage(env.context, CL_MEM_READ_ONLY, &format, &description, NULL, &status);
    expect_refused("clCreateImage", image, status);
    status = CL_SUCCESS;
    cl_mem pipe = clCreatePipe(env.context, CL_MEM_READ_WRITE, 4, 16, NULL, &status);
    expect_refused("clCreatePipe", pipe, status);
    status = CL_SUCCESS;
    cl_sampler sampler = clCreateSamplerWithProperties(env.context, NULL, &status);
    expect_refused("clCreateSamplerWithProperties", sampler, status);
    status = CL_SUCCESS;
    cl_mem image2d = clCreateImage2D(env.context, CL_MEM_READ_ONLY, &format, 16, 16, 0, NULL, &status);
    expect_refused("clCreateImage2D", image2d, status);
    status = CL_SUCCESS;
    size_t origin[3] = {0, 0, 0}, region[3] = {1, 1, 1}, pitch = 0;
    void *mapped = clEnqueueMapImage(env.queue, NULL, CL_TRUE, CL_MAP_READ, origin, region, &pitch, NULL, 0, NULL, NULL, &status);
    expect_refused("clEnqueueMapImage", mapped, status);
    void *svm = clSVMAlloc(env.context, CL_MEM_READ_WRITE, 64, 0);
    EXPECT_TRUE("clSVMAlloc gives NULL", svm == NULL);
    cl_test_close(&env);
    return cl_test_finish();
}
