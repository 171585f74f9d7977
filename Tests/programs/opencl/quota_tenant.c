// For the OpenCL quota test: run with a slice of mem=64MiB, it prints what its device reports as
// global memory and what buffer creation returns around the quota: 48 MiB fits, 32 MiB more does
// not (CL_MEM_OBJECT_ALLOCATION_FAILURE), and fits once the first buffer is released. A write and
// read back of the buffer shows the session still works after the refusal.
#define CL_TARGET_OPENCL_VERSION 300
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    cl_platform_id platform;
    cl_device_id device;
    cl_int status = clGetPlatformIDs(1, &platform, NULL);
    if (status == CL_SUCCESS) status = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, NULL);
    if (status != CL_SUCCESS) {
        printf("no device: %d\n", status);
        return 1;
    }
    cl_ulong memory = 0;
    clGetDeviceInfo(device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof memory, &memory, NULL);
    printf("global memory: %llu\n", (unsigned long long)memory);
    cl_context context = clCreateContext(NULL, 1, &device, NULL, NULL, &status);
    cl_command_queue queue = clCreateCommandQueue(context, device, 0, &status);
    size_t mib = 1 << 20;
    cl_mem first = clCreateBuffer(context, CL_MEM_READ_WRITE, 48 * mib, NULL, &status);
    printf("48 MiB buffer: %d\n", status);
    cl_mem second = clCreateBuffer(context, CL_MEM_READ_WRITE, 32 * mib, NULL, &status);
    printf("32 MiB more: %d (null: %d)\n", status, second == NULL);
    char message[] = "still serving";
    char back[sizeof message] = {0};
    status = clEnqueueWriteBuffer(queue, first, CL_TRUE, 0, sizeof message, message, 0, NULL, NULL);
    if (status == CL_SUCCESS) status = clEnqueueReadBuffer(queue, first, CL_TRUE, 0, sizeof back, back, 0, NULL, NULL);
    printf("round trip after the refusal: %d %s\n", status, back);
    clReleaseMemObject(first);
    second = clCreateBuffer(context, CL_MEM_READ_WRITE, 32 * mib, NULL, &status);
    printf("32 MiB after releasing 48: %d\n", status);
    clReleaseMemObject(second);
    clReleaseCommandQueue(queue);
    clReleaseContext(context);
    return 0;
}
