// For the OpenCL isolation test: creates a buffer of ARGV[1] MiB, fills it (so the server's
// platform really holds the memory), prints "ready" and waits to be killed.
#define CL_TARGET_OPENCL_VERSION 300
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MIB\n", argv[0]);
        return 2;
    }
    size_t bytes = (size_t)atoi(argv[1]) << 20;
    cl_platform_id platform;
    cl_device_id device;
    cl_int status = clGetPlatformIDs(1, &platform, NULL);
    if (status == CL_SUCCESS) status = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, NULL);
    if (status != CL_SUCCESS) {
        printf("no device: %d\n", status);
        return 1;
    }
    cl_context context = clCreateContext(NULL, 1, &device, NULL, NULL, &status);
    cl_command_queue queue = status == CL_SUCCESS ? clCreateCommandQueue(context, device, 0, &status) : NULL;
    cl_mem buffer = status == CL_SUCCESS ? clCreateBuffer(context, CL_MEM_READ_WRITE, bytes, NULL, &status) : NULL;
    cl_uint pattern = 0x5A5A5A5Au;
    if (status == CL_SUCCESS) status = clEnqueueFillBuffer(queue, buffer, &pattern, sizeof pattern, 0, bytes, 0, NULL, NULL);
    if (status == CL_SUCCESS) status = clFinish(queue);
    if (status != CL_SUCCESS) {
        printf("failed: %d\n", status);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) pause();
}
