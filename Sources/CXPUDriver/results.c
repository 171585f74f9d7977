/*
 * results.c: names and one-line descriptions of the CUresult codes declared in CXPUDriver.h.
 *
 * The names are the enumerator spellings (what cuGetErrorName returns); the descriptions are
 * xpu-remote's own wording (what cuGetErrorString returns through the shim and the simulated
 * device). Codes not declared in our header have neither, and both functions return NULL.
 */
#include "CXPUDriver.h"

/* One entry per result code: X(enumerator, description). Keep in the header's order. */
#define XPU_RESULT_CODES(X) \
    X(CUDA_SUCCESS, "no error") \
    X(CUDA_ERROR_INVALID_VALUE, "an argument is out of range or otherwise not acceptable") \
    X(CUDA_ERROR_OUT_OF_MEMORY, "not enough memory is available to complete the operation") \
    X(CUDA_ERROR_NOT_INITIALIZED, "the driver has not been initialized; call cuInit first") \
    X(CUDA_ERROR_DEINITIALIZED, "the driver is shutting down and accepts no more calls") \
    X(CUDA_ERROR_PROFILER_DISABLED, "profiling is turned off for this process") \
    X(CUDA_ERROR_PROFILER_NOT_INITIALIZED, "the profiler has not been set up (deprecated code)") \
    X(CUDA_ERROR_PROFILER_ALREADY_STARTED, "the profiler was already running (deprecated code)") \
    X(CUDA_ERROR_PROFILER_ALREADY_STOPPED, "the profiler was already stopped (deprecated code)") \
    X(CUDA_ERROR_STUB_LIBRARY, "the loaded driver library is a link-time stub, not a working driver") \
    X(CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER, "this call needs a newer driver than the one installed") \
    X(CUDA_ERROR_DEVICE_UNAVAILABLE, "the device is busy or otherwise cannot be used right now") \
    X(CUDA_ERROR_MULTICAST_RESOURCE_FULL, "no multicast resources are left for this request") \
    X(CUDA_ERROR_NO_DEVICE, "no usable device was found") \
    X(CUDA_ERROR_INVALID_DEVICE, "the device ordinal or handle does not name a usable device") \
    X(CUDA_ERROR_DEVICE_NOT_LICENSED, "the device lacks a license for the requested feature") \
    X(CUDA_ERROR_INVALID_IMAGE, "the module image could not be parsed") \
    X(CUDA_ERROR_INVALID_CONTEXT, "there is no current context, or the context handle is not valid") \
    X(CUDA_ERROR_CONTEXT_ALREADY_CURRENT, "the context is already current (deprecated code)") \
    X(CUDA_ERROR_MAP_FAILED, "a mapping operation failed") \
    X(CUDA_ERROR_UNMAP_FAILED, "an unmapping operation failed") \
    X(CUDA_ERROR_ARRAY_IS_MAPPED, "the array is mapped and cannot be destroyed") \
    X(CUDA_ERROR_ALREADY_MAPPED, "the resource is already mapped") \
    X(CUDA_ERROR_NO_BINARY_FOR_GPU, "the module contains no code that this device can run") \
    X(CUDA_ERROR_ALREADY_ACQUIRED, "the resource has already been acquired") \
    X(CUDA_ERROR_NOT_MAPPED, "the resource is not mapped") \
    X(CUDA_ERROR_NOT_MAPPED_AS_ARRAY, "the mapped resource cannot be used as an array") \
    X(CUDA_ERROR_NOT_MAPPED_AS_POINTER, "the mapped resource cannot be used as a pointer") \
    X(CUDA_ERROR_ECC_UNCORRECTABLE, "the device memory reported an uncorrectable ECC error") \
    X(CUDA_ERROR_UNSUPPORTED_LIMIT, "the device does not support this limit") \
    X(CUDA_ERROR_CONTEXT_ALREADY_IN_USE, "the context is already in use by another thread") \
    X(CUDA_ERROR_PEER_ACCESS_UNSUPPORTED, "peer access between these devices is not supported") \
    X(CUDA_ERROR_INVALID_PTX, "the PTX could not be compiled") \
    X(CUDA_ERROR_INVALID_GRAPHICS_CONTEXT, "the graphics interop context is not valid") \
    X(CUDA_ERROR_NVLINK_UNCORRECTABLE, "an uncorrectable NVLink error was detected") \
    X(CUDA_ERROR_JIT_COMPILER_NOT_FOUND, "the PTX JIT compiler library could not be found") \
    X(CUDA_ERROR_UNSUPPORTED_PTX_VERSION, "the PTX uses an ISA version this driver does not know") \
    X(CUDA_ERROR_JIT_COMPILATION_DISABLED, "JIT compilation of PTX has been turned off") \
    X(CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY, "the requested execution affinity type is not supported") \
    X(CUDA_ERROR_UNSUPPORTED_DEVSIDE_SYNC, "the code uses device-side synchronization the device cannot do") \
    X(CUDA_ERROR_CONTAINED, "an error was contained; the device must be reset before further use") \
    X(CUDA_ERROR_INSUFFICIENT_LOADER_VERSION, "the driver loader is too old for this request") \
    X(CUDA_ERROR_INVALID_SOURCE, "the kernel source is not valid") \
    X(CUDA_ERROR_FILE_NOT_FOUND, "the named file does not exist") \
    X(CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND, "a symbol of a shared object could not be resolved") \
    X(CUDA_ERROR_SHARED_OBJECT_INIT_FAILED, "a shared object failed to initialize") \
    X(CUDA_ERROR_OPERATING_SYSTEM, "an operating system call failed") \
    X(CUDA_ERROR_INVALID_HANDLE, "the handle does not name a live object of the expected kind") \
    X(CUDA_ERROR_ILLEGAL_STATE, "the object is not in a state that allows this operation") \
    X(CUDA_ERROR_LOSSY_QUERY, "the answer would lose information, so the query was refused") \
    X(CUDA_ERROR_NOT_FOUND, "the named symbol or object was not found") \
    X(CUDA_ERROR_NOT_READY, "the work has not finished yet") \
    X(CUDA_ERROR_ILLEGAL_ADDRESS, "a kernel accessed an address it must not; the context is unusable") \
    X(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "the launch asks for more registers or threads than available") \
    X(CUDA_ERROR_LAUNCH_TIMEOUT, "the kernel ran past the time limit and was stopped") \
    X(CUDA_ERROR_LAUNCH_INCOMPATIBLE_TEXTURING, "the launch used an incompatible texturing mode") \
    X(CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED, "peer access to that context is already on") \
    X(CUDA_ERROR_PEER_ACCESS_NOT_ENABLED, "peer access to that context was never turned on") \
    X(CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE, "the primary context is active, so its flags cannot change") \
    X(CUDA_ERROR_CONTEXT_IS_DESTROYED, "the current context has been destroyed") \
    X(CUDA_ERROR_ASSERT, "a device-side assertion failed; the context is unusable") \
    X(CUDA_ERROR_TOO_MANY_PEERS, "no more peer mappings can be made to this device") \
    X(CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED, "the host memory range is already registered") \
    X(CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED, "the host memory range is not registered") \
    X(CUDA_ERROR_HARDWARE_STACK_ERROR, "a kernel overflowed or corrupted its call stack; the context is unusable") \
    X(CUDA_ERROR_ILLEGAL_INSTRUCTION, "a kernel executed an invalid instruction; the context is unusable") \
    X(CUDA_ERROR_MISALIGNED_ADDRESS, "a kernel used a misaligned address; the context is unusable") \
    X(CUDA_ERROR_INVALID_ADDRESS_SPACE, "a kernel used an address in the wrong state space; the context is unusable") \
    X(CUDA_ERROR_INVALID_PC, "a kernel's program counter went astray; the context is unusable") \
    X(CUDA_ERROR_LAUNCH_FAILED, "the kernel failed while running; the context is unusable") \
    X(CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE, "the cooperative launch has more blocks than can be resident") \
    X(CUDA_ERROR_TENSOR_MEMORY_LEAK, "a kernel exited without releasing its tensor memory") \
    X(CUDA_ERROR_NOT_PERMITTED, "the caller is not allowed to perform this operation") \
    X(CUDA_ERROR_NOT_SUPPORTED, "this operation is not supported here") \
    X(CUDA_ERROR_SYSTEM_NOT_READY, "the system is not ready for compute work yet") \
    X(CUDA_ERROR_SYSTEM_DRIVER_MISMATCH, "the user-mode driver and the kernel driver versions differ") \
    X(CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE, "forward-compatibility mode is not supported on this device") \
    X(CUDA_ERROR_MPS_CONNECTION_FAILED, "could not connect to the MPS control daemon or server") \
    X(CUDA_ERROR_MPS_RPC_FAILURE, "a remote call to the MPS server failed") \
    X(CUDA_ERROR_MPS_SERVER_NOT_READY, "the MPS server is not ready for clients yet") \
    X(CUDA_ERROR_MPS_MAX_CLIENTS_REACHED, "the MPS server has no room for another client") \
    X(CUDA_ERROR_MPS_MAX_CONNECTIONS_REACHED, "the MPS server has no room for another device connection") \
    X(CUDA_ERROR_MPS_CLIENT_TERMINATED, "the MPS client was terminated by the server") \
    X(CUDA_ERROR_CDP_NOT_SUPPORTED, "the module uses dynamic parallelism, which is not supported here") \
    X(CUDA_ERROR_CDP_VERSION_MISMATCH, "the module mixes incompatible dynamic parallelism versions") \
    X(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "this operation is not allowed while the stream is capturing") \
    X(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "an earlier error invalidated the stream capture") \
    X(CUDA_ERROR_STREAM_CAPTURE_MERGE, "the operation would merge two separate captures") \
    X(CUDA_ERROR_STREAM_CAPTURE_UNMATCHED, "the capture was not started on this stream") \
    X(CUDA_ERROR_STREAM_CAPTURE_UNJOINED, "a forked capture was not joined back to its origin stream") \
    X(CUDA_ERROR_STREAM_CAPTURE_ISOLATION, "the operation would cross the capture's isolation boundary") \
    X(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, "the operation would implicitly depend on the legacy stream during capture") \
    X(CUDA_ERROR_CAPTURED_EVENT, "the event was recorded during capture and cannot be used this way") \
    X(CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD, "the capture must be ended on the thread that began it") \
    X(CUDA_ERROR_TIMEOUT, "the wait timed out") \
    X(CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE, "the executable graph could not be updated in place") \
    X(CUDA_ERROR_EXTERNAL_DEVICE, "an asynchronous error came from a device outside the driver's control") \
    X(CUDA_ERROR_INVALID_CLUSTER_SIZE, "the cluster size of the launch is not valid") \
    X(CUDA_ERROR_FUNCTION_NOT_LOADED, "the function has not been loaded yet") \
    X(CUDA_ERROR_INVALID_RESOURCE_TYPE, "the resource type is not valid for this operation") \
    X(CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION, "the resource configuration is not valid for this operation") \
    X(CUDA_ERROR_KEY_ROTATION, "the operation failed during encryption key rotation") \
    X(CUDA_ERROR_STREAM_DETACHED, "the stream has been detached and cannot take more work") \
    X(CUDA_ERROR_GRAPH_RECAPTURE_FAILURE, "recapturing into the graph failed") \
    X(CUDA_ERROR_FABRIC_NOT_READY, "the memory fabric is not ready yet") \
    X(CUDA_ERROR_UNKNOWN, "an unknown internal error occurred")

const char *xpu_result_name(CUresult result) {
    switch (result) {
#define XPU_NAME_CASE(code, text) \
    case code: \
        return #code;
        XPU_RESULT_CODES(XPU_NAME_CASE)
#undef XPU_NAME_CASE
    default:
        return NULL;
    }
}

const char *xpu_result_description(CUresult result) {
    switch (result) {
#define XPU_DESCRIPTION_CASE(code, text) \
    case code: \
        return text;
        XPU_RESULT_CODES(XPU_DESCRIPTION_CASE)
#undef XPU_DESCRIPTION_CASE
    default:
        return NULL;
    }
}
