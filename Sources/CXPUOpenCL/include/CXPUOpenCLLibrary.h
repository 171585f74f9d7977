// The system's OpenCL (the ICD loader libOpenCL.so.1, or a platform's library), loaded with
// dlopen by the server's OpenCL backend. Each pointer has the exact type of the call it holds
// (from CXPUOpenCL.h), so a wrong signature cannot compile; nothing links against OpenCL.
#ifndef CXPU_OPENCL_LIBRARY_H
#define CXPU_OPENCL_LIBRARY_H

#include "CXPUOpenCL.h"

#define XPU_OPENCL_LIBRARY_FUNCTIONS(FN) \
    FN(clGetPlatformIDs) \
    FN(clGetPlatformInfo) \
    FN(clGetDeviceIDs) \
    FN(clGetDeviceInfo) \
    FN(clCreateContext) \
    FN(clReleaseContext) \
    FN(clGetContextInfo) \
    FN(clCreateCommandQueue) \
    FN(clReleaseCommandQueue) \
    FN(clGetCommandQueueInfo) \
    FN(clFlush) \
    FN(clFinish) \
    FN(clCreateBuffer) \
    FN(clReleaseMemObject) \
    FN(clGetMemObjectInfo) \
    FN(clGetSupportedImageFormats) \
    FN(clEnqueueReadBuffer) \
    FN(clEnqueueWriteBuffer) \
    FN(clEnqueueCopyBuffer) \
    FN(clCreateSubBuffer) \
    FN(clEnqueueCopyBufferRect) \
    FN(clEnqueueFillBuffer) \
    FN(clCreateProgramWithSource) \
    FN(clCreateProgramWithBinary) \
    FN(clReleaseProgram) \
    FN(clBuildProgram) \
    FN(clCompileProgram) \
    FN(clLinkProgram) \
    FN(clGetProgramInfo) \
    FN(clGetProgramBuildInfo) \
    FN(clCreateKernel) \
    FN(clReleaseKernel) \
    FN(clSetKernelArg) \
    FN(clGetKernelInfo) \
    FN(clGetKernelArgInfo) \
    FN(clGetKernelWorkGroupInfo) \
    FN(clEnqueueNDRangeKernel) \
    FN(clWaitForEvents) \
    FN(clGetEventInfo) \
    FN(clGetEventProfilingInfo) \
    FN(clRetainEvent) \
    FN(clReleaseEvent) \
    FN(clCreateUserEvent) \
    FN(clSetUserEventStatus) \
    FN(clEnqueueMarkerWithWaitList) \
    FN(clEnqueueBarrierWithWaitList)

struct xpu_opencl_library {
    void *handle;
#define XPU_OPENCL_FIELD(name) __typeof__(&name) name;
    XPU_OPENCL_LIBRARY_FUNCTIONS(XPU_OPENCL_FIELD)
#undef XPU_OPENCL_FIELD
};

/// Loads `path` and every call above; 0, or -1 with the reason in `error`.
int xpu_opencl_library_open(const char *path, struct xpu_opencl_library *library, char *error, size_t capacity);

#endif
