// The one monotonic clock of the server, the shim, the bench and the simulated device
// (libxpusim.so shares no Swift module with the others, so the clock lives in C, inline).
#ifndef CXPUCLOCK_H
#define CXPUCLOCK_H

#include <stdint.h>
#include <time.h>

/// Nanoseconds on CLOCK_MONOTONIC: never stepped by NTP or `date`, and the clock the
/// scheduler's and the shim's timed waits run on.
static inline uint64_t xpu_monotonic_nanoseconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

#endif
