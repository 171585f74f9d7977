// RDMA connections for xpu-remote's rdma:// transport, on libibverbs and librdmacm loaded with
// dlopen at first use (nothing links them, so the shim loads on hosts without RDMA).
//
// A connection is one reliable-connected queue pair set up through the RDMA connection manager,
// with two registered regions of `slot_count` slots of `slot_bytes` each: one the application
// fills and posts as SENDs, one the peer's SENDs land in (pre-posted RECVs); and, for bulk data,
// a staging region (the source of RDMA WRITEs) and a landing region the peer may WRITE into
// (its address and rkey travel in the connection private data). Flow control (credits) is the
// caller's: see Sources/XPUTransport/RDMATransport.swift.
#ifndef CXPUVERBS_H
#define CXPUVERBS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Internal to the library that links this target (the shim exports only the API): hidden.
#pragma GCC visibility push(hidden)

typedef struct xpu_rdma_listener xpu_rdma_listener;
typedef struct xpu_rdma_connection xpu_rdma_connection;

/// Loads libibverbs.so.1 and librdmacm.so.1 once. 0, or -1 with the reason in `error`.
int xpu_verbs_load(char *error, size_t error_size);

xpu_rdma_listener *xpu_rdma_listen(const char *host, uint16_t port, char *error, size_t error_size);
/// The bound port (the real one when 0 was asked for).
uint16_t xpu_rdma_listener_port(xpu_rdma_listener *listener);
/// Waits for the next connection request and accepts it with the given slots and bulk regions.
/// NULL on failure, with `*retry` 1 when only that client failed (accepting may go on) and 0 when
/// the listener is shut down or broken.
xpu_rdma_connection *xpu_rdma_accept(
    xpu_rdma_listener *listener, uint32_t slot_count, uint32_t slot_bytes, uint32_t bulk_count, uint32_t bulk_bytes,
    int *retry, char *error, size_t error_size);
/// Wakes a thread in xpu_rdma_accept, which returns NULL; later accepts fail. Any thread.
void xpu_rdma_listener_shutdown(xpu_rdma_listener *listener);
void xpu_rdma_listener_close(xpu_rdma_listener *listener);

xpu_rdma_connection *xpu_rdma_connect(
    const char *host, uint16_t port, uint32_t slot_count, uint32_t slot_bytes, uint32_t bulk_count, uint32_t bulk_bytes,
    int timeout_ms, char *error, size_t error_size);

void *xpu_rdma_send_slot(xpu_rdma_connection *connection, uint32_t slot);
void *xpu_rdma_receive_slot(xpu_rdma_connection *connection, uint32_t slot);
int xpu_rdma_post_receive(xpu_rdma_connection *connection, uint32_t slot, char *error, size_t error_size);
int xpu_rdma_post_send(xpu_rdma_connection *connection, uint32_t slot, uint32_t length, char *error, size_t error_size);

/// Bulk regions (bulk_count x bulk_bytes): staging is the local source of RDMA WRITEs, landing is
/// where the peer WRITEs (registered with remote write access).
void *xpu_rdma_staging_slot(xpu_rdma_connection *connection, uint32_t slot);
void *xpu_rdma_landing_slot(xpu_rdma_connection *connection, uint32_t slot);
/// The peer's landing region, from its connection private data.
uint64_t xpu_rdma_peer_landing_address(xpu_rdma_connection *connection);
uint32_t xpu_rdma_peer_landing_rkey(xpu_rdma_connection *connection);
/// The peer's numeric address. 0, or -1.
int xpu_rdma_peer_host(xpu_rdma_connection *connection, char *host, size_t host_size);
/// Posts a signaled RDMA WRITE of the first `length` bytes of a staging slot to the peer's memory.
int xpu_rdma_post_write(
    xpu_rdma_connection *connection, uint32_t staging_slot, uint32_t length, uint64_t remote_address, uint32_t rkey,
    char *error, size_t error_size);

typedef struct xpu_rdma_completion {
    /// 0 send, 1 receive, 2 RDMA WRITE.
    int32_t kind;
    uint32_t slot;
    uint32_t length;
    /// 0 for success, else the ibv_wc_status.
    int32_t status;
} xpu_rdma_completion;

/// Up to `capacity` completions into `out`: the count (0 after `timeout_ms` with none), -2 when
/// the peer disconnected, -1 on error (reason in `error`).
int xpu_rdma_wait(
    xpu_rdma_connection *connection, xpu_rdma_completion *out, int capacity, int timeout_ms, char *error,
    size_t error_size);
/// Starts disconnecting (wakes a waiter with -2); safe from another thread.
void xpu_rdma_disconnect(xpu_rdma_connection *connection);
/// Frees everything; the connection must no longer be used by any thread.
void xpu_rdma_close(xpu_rdma_connection *connection);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
