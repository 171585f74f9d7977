/*
 * profiler.c: the profiler control calls of cudaProfiler.h (cuProfilerInitialize, cuProfilerStart,
 * cuProfilerStop), which a real libcuda.so.1 exports and frameworks call (numba-cuda's profiling
 * helpers, cudaProfilerStart in the runtime). They only mark a region for a profiler attached to
 * the process that owns the device; no profiler attaches to the simulated device, and the client
 * of a remote device is not that process, so both libraries answer them here, successfully and
 * without effect. cuProfilerInitialize is deprecated and its file paths name the caller's files.
 */
#include "CXPURuntimeSupport.h"

CUresult cuProfilerInitialize(const char *configFile, const char *outputFile, int outputMode) {
    (void)configFile;
    (void)outputFile;
    (void)outputMode;
    return CUDA_SUCCESS;
}

CUresult cuProfilerStart(void) { return CUDA_SUCCESS; }

CUresult cuProfilerStop(void) { return CUDA_SUCCESS; }
