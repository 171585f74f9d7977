import CXPUDriver
import CXPURuntimeSupport

// Managed and mapped host memory are emulated above the device (CXPURuntimeSupport's
// coherent.c), as the shim does for a remote device, so a program meets the same behaviour
// direct and through a server: host writes are pushed before device work that may read them,
// and the device's contents pulled after each synchronization.

/// Work that may read device memory is about to be enqueued.
func beforeDeviceWork() { xpu_coherent_push() }

/// `status` of a synchronization: on success the host is brought up to date first.
func synchronized(_ status: CUresult) -> CUresult {
    if status == CUDA_SUCCESS { xpu_coherent_pull() }
    return status
}
