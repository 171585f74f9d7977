/*
 * capture_mode.c: the calling thread's stream-capture mode, which cuThreadExchangeStreamCaptureMode
 * swaps (in the shim and in the simulated device). Neither captures streams, so the mode changes
 * nothing, but a caller such as PyTorch's caching allocator reads it and puts it back.
 */
#include "CXPUDriver.h"

static _Thread_local unsigned int capture_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;

unsigned int xpu_capture_mode_exchange(unsigned int mode) {
    unsigned int previous = capture_mode;
    capture_mode = mode;
    return previous;
}
