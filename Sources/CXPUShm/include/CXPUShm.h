// Shared-memory rings for same-node clients: memfd, futex, atomics on shared memory, and file
// descriptor passing over a Unix socket. Linux only; libc only.
#ifndef CXPUSHM_H
#define CXPUSHM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Internal to the library that links this target (the shim exports only the API): hidden.
#pragma GCC visibility push(hidden)

/// A sealed memfd of `size` bytes (it can never shrink or grow, so a peer that maps it cannot be
/// made to fault by a truncate). Returns the descriptor, or -1 with errno set.
int xpu_shm_create(size_t size);
/// 0 when `fd` is a memfd of exactly `size` bytes sealed against shrinking and growing; else -1.
int xpu_shm_check(int fd, size_t size);
/// Maps `fd` shared, read-write; NULL on failure.
void *xpu_shm_map(int fd, size_t size);
void xpu_shm_unmap(void *address, size_t size);

/// Sends `count` bytes with `fd` attached (SCM_RIGHTS). 0, or -1 with errno set.
int xpu_send_with_fd(int socket, const void *bytes, size_t count, int fd);
/// Receives exactly `count` bytes; `*fd` is the descriptor that came with them or -1. 0 on
/// success, -1 with errno set (ECONNRESET when the peer closed first).
int xpu_receive_with_fd(int socket, void *bytes, size_t count, int *fd);

uint64_t xpu_load_acquire_u64(const uint64_t *address);
void xpu_store_release_u64(uint64_t *address, uint64_t value);
uint32_t xpu_load_u32(const uint32_t *address);
void xpu_store_u32(uint32_t *address, uint32_t value);
uint32_t xpu_exchange_u32(uint32_t *address, uint32_t value);
uint32_t xpu_fetch_add_u32(uint32_t *address, uint32_t value);
/// A full (sequentially consistent) fence.
void xpu_fence(void);
/// A spin-wait hint to the CPU.
void xpu_cpu_relax(void);

/// Sleeps while `*address == expected`, at most `timeout_ms` (no limit when negative), across
/// processes (FUTEX_WAIT on shared memory). Returns 0 when woken or the value differed, 1 on
/// timeout.
int xpu_futex_wait(uint32_t *address, uint32_t expected, int timeout_ms);
/// Wakes every waiter on `address`.
void xpu_futex_wake(uint32_t *address);

/// 1 when the peer of a connected socket has closed or reset it (without consuming data).
int xpu_socket_peer_gone(int socket);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
