/*
 * thread_name.c: names threads for the system, so that an operator reading top -H or /proc can
 * tell the server's session threads, the shim's flusher and the simulated device's stream workers
 * apart from the application's own.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>

#include "CXPUDriver.h"

void xpu_name_thread(pthread_t thread, const char *name) {
    char truncated[16];
    strncpy(truncated, name, sizeof truncated - 1);
    truncated[sizeof truncated - 1] = '\0';
    (void)pthread_setname_np(thread, truncated);
}

void xpu_name_this_thread(const char *name) { xpu_name_thread(pthread_self(), name); }
