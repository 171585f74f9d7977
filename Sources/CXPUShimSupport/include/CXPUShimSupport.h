/*
 * CXPUShimSupport.h: the shim's C helpers — what Swift cannot express portably or cheaply:
 * per-thread context stacks, fork-aware lane and registry locks, and the tables generated
 * from proto/.
 */
#ifndef CXPU_SHIM_SUPPORT_H
#define CXPU_SHIM_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include "CXPUDriver.h"

#ifdef __cplusplus
extern "C" {
#endif

/* cuGetProcAddress: a base name, the export it means, and its per-thread-default-stream form. */
struct xpu_proc_entry {
    const char *name;
    void *function;
    void *per_thread_function;
};
extern const struct xpu_proc_entry xpu_proc_table[];
extern const size_t xpu_proc_table_count;
/* The entry for `name`, or NULL when the shim does not serve it. */
const struct xpu_proc_entry *xpu_proc_lookup(const char *name);

/*
 * SHA-256 of `length` bytes into `digest`, by OpenSSL 3's libcrypto (dlopen'ed at first use).
 * Returns 0, or -1 when libcrypto cannot be loaded; then xpu_digest_unavailable() says why.
 */
int xpu_sha256(const void *message, size_t length, uint8_t digest[32]);
/* NULL when libcrypto is loaded (loading it now if need be), else why it cannot be. */
const char *xpu_digest_unavailable(void);
/* As xpu_digest_unavailable, but the reason only to the first caller (so it is logged once). */
const char *xpu_digest_unavailable_first(void);

/* Called by every unserved export (generated in unsupported.c); implemented in Swift. */
int xpu_shim_unsupported(const char *name);

/*
 * The calling thread's context stack (CUDA keeps one per thread). Entries are session handles;
 * 0 means no context. Push fails (returns 0) when the stack is full.
 */
#define XPU_CONTEXT_STACK_CAPACITY 256
uint64_t xpu_context_current(void);
int xpu_context_push(uint64_t context);
uint64_t xpu_context_pop(void);
void xpu_context_set_current(uint64_t context);
/* Removes a destroyed context from the calling thread's stack. */
void xpu_context_forget(uint64_t context);

/*
 * Each lane (one session with one server) has a lock that serializes calls on its connection
 * (recursive: a call's checks, send and bookkeeping happen under one hold, through helpers that
 * also lock). The registry lock guards the shim's process-wide tables (the device list, caches);
 * it is taken last and never held while a lane lock is taken. Lane locks are taken in ascending
 * order when a thread needs two. All are held across fork() (pthread_atfork), so a child never
 * inherits one locked; the child's fork generation differs from its parent's, which tells the
 * shim that the inherited connections belong to the parent.
 */
#define XPU_LANE_CAPACITY 16
void xpu_lane_lock(uint32_t lane);
void xpu_lane_unlock(uint32_t lane);
/* Waits (the lane's lock held once) until signalled or `timeout_ns` pass (0: no timeout). */
void xpu_lane_wait(uint32_t lane, uint64_t timeout_ns);
/* Wakes the thread waiting in xpu_lane_wait on that lane (its flusher, when frames are queued). */
void xpu_lane_signal(uint32_t lane);
void xpu_registry_lock(void);
void xpu_registry_unlock(void);
void xpu_install_fork_handlers(void);
uint64_t xpu_fork_generation(void);

#ifdef __cplusplus
}
#endif

#endif /* CXPU_SHIM_SUPPORT_H */
