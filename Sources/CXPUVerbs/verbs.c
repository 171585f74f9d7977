// libibverbs and librdmacm through dlopen: see include/CXPUVerbs.h. The system headers are used
// for types and constants only; every library function is called through `rdma` below (the
// ibv_post_send/ibv_post_recv/ibv_poll_cq/ibv_req_notify_cq of verbs.h are inline functions that
// go through the device's ops table and need no symbol).
//
// UNTESTED ON HARDWARE: this file builds and links here, but no machine available to the project
// has an RDMA device (see proto/SECURITY.md, "RDMA", for how to run it on Soft-RoCE).
#define _GNU_SOURCE
#include "CXPUVerbs.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

static struct {
    __typeof__(&ibv_alloc_pd) alloc_pd;
    __typeof__(&ibv_dealloc_pd) dealloc_pd;
    struct ibv_mr *(*reg_mr)(struct ibv_pd *, void *, size_t, int);
    __typeof__(&ibv_dereg_mr) dereg_mr;
    __typeof__(&ibv_create_comp_channel) create_comp_channel;
    __typeof__(&ibv_destroy_comp_channel) destroy_comp_channel;
    __typeof__(&ibv_create_cq) create_cq;
    __typeof__(&ibv_destroy_cq) destroy_cq;
    __typeof__(&ibv_get_cq_event) get_cq_event;
    __typeof__(&ibv_ack_cq_events) ack_cq_events;
    __typeof__(&ibv_wc_status_str) wc_status_str;
    __typeof__(&rdma_create_event_channel) create_event_channel;
    __typeof__(&rdma_destroy_event_channel) destroy_event_channel;
    __typeof__(&rdma_create_id) create_id;
    __typeof__(&rdma_destroy_id) destroy_id;
    __typeof__(&rdma_bind_addr) bind_addr;
    __typeof__(&rdma_listen) listen;
    __typeof__(&rdma_resolve_addr) resolve_addr;
    __typeof__(&rdma_resolve_route) resolve_route;
    __typeof__(&rdma_create_qp) create_qp;
    __typeof__(&rdma_destroy_qp) destroy_qp;
    __typeof__(&rdma_connect) connect;
    __typeof__(&rdma_accept) accept;
    __typeof__(&rdma_reject) reject;
    __typeof__(&rdma_disconnect) disconnect;
    __typeof__(&rdma_get_cm_event) get_cm_event;
    __typeof__(&rdma_ack_cm_event) ack_cm_event;
    __typeof__(&rdma_migrate_id) migrate_id;
    __typeof__(&rdma_event_str) event_str;
    __typeof__(&rdma_get_src_port) get_src_port;
} rdma;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[512];
static int load_status = -1;

static void load_libraries(void) {
    void *verbs = dlopen("libibverbs.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!verbs) {
        snprintf(load_error, sizeof load_error, "cannot load libibverbs.so.1 (install rdma-core): %s", dlerror());
        return;
    }
    void *cm = dlopen("librdmacm.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!cm) {
        snprintf(load_error, sizeof load_error, "cannot load librdmacm.so.1 (install rdma-core): %s", dlerror());
        return;
    }
#define RESOLVE(library, field, symbol) \
    if (!(*(void **)&rdma.field = dlsym(library, symbol))) { \
        snprintf(load_error, sizeof load_error, "%s lacks %s", library == verbs ? "libibverbs.so.1" : "librdmacm.so.1", symbol); \
        return; \
    }
    RESOLVE(verbs, alloc_pd, "ibv_alloc_pd")
    RESOLVE(verbs, dealloc_pd, "ibv_dealloc_pd")
    RESOLVE(verbs, reg_mr, "ibv_reg_mr")
    RESOLVE(verbs, dereg_mr, "ibv_dereg_mr")
    RESOLVE(verbs, create_comp_channel, "ibv_create_comp_channel")
    RESOLVE(verbs, destroy_comp_channel, "ibv_destroy_comp_channel")
    RESOLVE(verbs, create_cq, "ibv_create_cq")
    RESOLVE(verbs, destroy_cq, "ibv_destroy_cq")
    RESOLVE(verbs, get_cq_event, "ibv_get_cq_event")
    RESOLVE(verbs, ack_cq_events, "ibv_ack_cq_events")
    RESOLVE(verbs, wc_status_str, "ibv_wc_status_str")
    RESOLVE(cm, create_event_channel, "rdma_create_event_channel")
    RESOLVE(cm, destroy_event_channel, "rdma_destroy_event_channel")
    RESOLVE(cm, create_id, "rdma_create_id")
    RESOLVE(cm, destroy_id, "rdma_destroy_id")
    RESOLVE(cm, bind_addr, "rdma_bind_addr")
    RESOLVE(cm, listen, "rdma_listen")
    RESOLVE(cm, resolve_addr, "rdma_resolve_addr")
    RESOLVE(cm, resolve_route, "rdma_resolve_route")
    RESOLVE(cm, create_qp, "rdma_create_qp")
    RESOLVE(cm, destroy_qp, "rdma_destroy_qp")
    RESOLVE(cm, connect, "rdma_connect")
    RESOLVE(cm, accept, "rdma_accept")
    RESOLVE(cm, reject, "rdma_reject")
    RESOLVE(cm, disconnect, "rdma_disconnect")
    RESOLVE(cm, get_cm_event, "rdma_get_cm_event")
    RESOLVE(cm, ack_cm_event, "rdma_ack_cm_event")
    RESOLVE(cm, migrate_id, "rdma_migrate_id")
    RESOLVE(cm, event_str, "rdma_event_str")
    RESOLVE(cm, get_src_port, "rdma_get_src_port")
    load_status = 0;
}

int xpu_verbs_load(char *error, size_t error_size) {
    pthread_once(&load_once, load_libraries);
    if (load_status != 0 && error && error_size) snprintf(error, error_size, "%s", load_error);
    return load_status;
}

#define FAIL(...) \
    do { \
        if (error && error_size) snprintf(error, error_size, __VA_ARGS__); \
        goto fail; \
    } while (0)

/// What both sides announce in the connection's private data; they must agree.
/// Each side also tells the other where its landing region is (address and rkey), for RDMA WRITE.
struct setup_data {
    uint32_t magic;
    uint32_t slot_count;
    uint32_t slot_bytes;
    uint32_t bulk_count;
    uint32_t bulk_bytes;
    uint32_t landing_rkey;
    uint64_t landing_address;
};
#define SETUP_MAGIC 0x52555059u

struct xpu_rdma_listener {
    struct rdma_event_channel *channel;
    struct rdma_cm_id *id;
    /// Written by xpu_rdma_listener_shutdown to wake xpu_rdma_accept.
    int wake[2];
    volatile int shut_down;
};

struct xpu_rdma_connection {
    struct rdma_event_channel *channel;
    struct rdma_cm_id *id;
    struct ibv_pd *pd;
    struct ibv_comp_channel *completions;
    struct ibv_cq *cq;
    struct ibv_mr *send_mr, *receive_mr;
    char *send_region, *receive_region;
    uint32_t slot_count, slot_bytes;
    /// Bulk: staging (local source of RDMA WRITEs) and landing (the peer WRITEs here) regions of
    /// bulk_count x bulk_bytes each; none when bulk_count is 0.
    struct ibv_mr *staging_mr, *landing_mr;
    char *staging_region, *landing_region;
    uint32_t bulk_count, bulk_bytes;
    uint64_t peer_landing_address;
    uint32_t peer_landing_rkey;
    int qp_created;
    volatile int disconnected;
};

/// Waits for the next event on `channel`; it must be `expected`. 0, or -1 with the reason.
/// With `setup` set, the peer's private data (the accept's, on ESTABLISHED) is copied there.
static int expect_event(
    struct rdma_event_channel *channel, enum rdma_cm_event_type expected, struct setup_data *setup, char *error,
    size_t error_size) {
    struct rdma_cm_event *event;
    if (rdma.get_cm_event(channel, &event) != 0) {
        if (error && error_size) snprintf(error, error_size, "rdma_get_cm_event: %s", strerror(errno));
        return -1;
    }
    enum rdma_cm_event_type type = event->event;
    int status = event->status;
    if (setup) {
        memset(setup, 0, sizeof *setup);
        if (type == expected && event->param.conn.private_data && event->param.conn.private_data_len >= sizeof *setup)
            memcpy(setup, event->param.conn.private_data, sizeof *setup);
    }
    rdma.ack_cm_event(event);
    if (type != expected) {
        if (error && error_size)
            snprintf(error, error_size, "expected %s, got %s (status %d)", rdma.event_str(expected), rdma.event_str(type), status);
        return -1;
    }
    return 0;
}

/// Protection domain, completion queue, queue pair, registered slots, receives posted.
static int setup_resources(xpu_rdma_connection *c, char *error, size_t error_size) {
    size_t region = (size_t)c->slot_count * c->slot_bytes;
    if (!(c->pd = rdma.alloc_pd(c->id->verbs))) FAIL("ibv_alloc_pd: %s", strerror(errno));
    if (!(c->completions = rdma.create_comp_channel(c->id->verbs))) FAIL("ibv_create_comp_channel: %s", strerror(errno));
    if (!(c->cq = rdma.create_cq(c->id->verbs, (int)(2 * c->slot_count + c->bulk_count + 4), NULL, c->completions, 0)))
        FAIL("ibv_create_cq: %s", strerror(errno));
    struct ibv_qp_init_attr attributes;
    memset(&attributes, 0, sizeof attributes);
    attributes.send_cq = c->cq;
    attributes.recv_cq = c->cq;
    attributes.qp_type = IBV_QPT_RC;
    attributes.cap.max_send_wr = c->slot_count + c->bulk_count;
    attributes.cap.max_recv_wr = c->slot_count;
    attributes.cap.max_send_sge = 1;
    attributes.cap.max_recv_sge = 1;
    if (rdma.create_qp(c->id, c->pd, &attributes) != 0) FAIL("rdma_create_qp: %s", strerror(errno));
    c->qp_created = 1;
    if (posix_memalign((void **)&c->send_region, 4096, region) != 0 ||
        posix_memalign((void **)&c->receive_region, 4096, region) != 0)
        FAIL("out of memory for %zu-byte RDMA regions", region);
    if (!(c->send_mr = rdma.reg_mr(c->pd, c->send_region, region, IBV_ACCESS_LOCAL_WRITE)))
        FAIL("ibv_reg_mr (send slots): %s", strerror(errno));
    if (!(c->receive_mr = rdma.reg_mr(c->pd, c->receive_region, region, IBV_ACCESS_LOCAL_WRITE)))
        FAIL("ibv_reg_mr (receive slots): %s", strerror(errno));
    if (c->bulk_count > 0) {
        size_t bulk = (size_t)c->bulk_count * c->bulk_bytes;
        if (posix_memalign((void **)&c->staging_region, 4096, bulk) != 0 ||
            posix_memalign((void **)&c->landing_region, 4096, bulk) != 0)
            FAIL("out of memory for %zu-byte RDMA bulk regions", bulk);
        if (!(c->staging_mr = rdma.reg_mr(c->pd, c->staging_region, bulk, IBV_ACCESS_LOCAL_WRITE)))
            FAIL("ibv_reg_mr (staging): %s", strerror(errno));
        // Only the landing region is remotely writable, and only through this connection's PD.
        if (!(c->landing_mr = rdma.reg_mr(c->pd, c->landing_region, bulk, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE)))
            FAIL("ibv_reg_mr (landing): %s", strerror(errno));
    }
    // Every receive is posted before the connection is established, so the peer's first SEND
    // finds one (the transport reposts them from then on).
    for (uint32_t slot = 0; slot < c->slot_count; slot++)
        if (xpu_rdma_post_receive(c, slot, error, error_size) != 0) goto fail;
    return 0;
fail:
    return -1;
}

static void release(xpu_rdma_connection *c) {
    if (!c) return;
    if (c->qp_created) rdma.destroy_qp(c->id);
    if (c->send_mr) rdma.dereg_mr(c->send_mr);
    if (c->receive_mr) rdma.dereg_mr(c->receive_mr);
    if (c->staging_mr) rdma.dereg_mr(c->staging_mr);
    if (c->landing_mr) rdma.dereg_mr(c->landing_mr);
    if (c->cq) rdma.destroy_cq(c->cq);
    if (c->completions) rdma.destroy_comp_channel(c->completions);
    if (c->pd) rdma.dealloc_pd(c->pd);
    if (c->id) rdma.destroy_id(c->id);
    if (c->channel) rdma.destroy_event_channel(c->channel);
    free(c->send_region);
    free(c->receive_region);
    free(c->staging_region);
    free(c->landing_region);
    free(c);
}

static int resolve(const char *host, uint16_t port, struct addrinfo **result, char *error, size_t error_size) {
    char service[8];
    snprintf(service, sizeof service, "%u", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int status = getaddrinfo(host, service, &hints, result);
    if (status != 0 && error && error_size) snprintf(error, error_size, "cannot resolve %s: %s", host, gai_strerror(status));
    return status == 0 ? 0 : -1;
}

xpu_rdma_listener *xpu_rdma_listen(const char *host, uint16_t port, char *error, size_t error_size) {
    if (xpu_verbs_load(error, error_size) != 0) return NULL;
    struct addrinfo *address = NULL;
    xpu_rdma_listener *listener = calloc(1, sizeof *listener);
    if (!listener) return NULL;
    listener->wake[0] = listener->wake[1] = -1;
    if (pipe2(listener->wake, O_CLOEXEC | O_NONBLOCK) != 0) FAIL("pipe: %s", strerror(errno));
    if (resolve(host, port, &address, error, error_size) != 0) goto fail;
    if (!(listener->channel = rdma.create_event_channel())) FAIL("rdma_create_event_channel: %s", strerror(errno));
    if (rdma.create_id(listener->channel, &listener->id, NULL, RDMA_PS_TCP) != 0) FAIL("rdma_create_id: %s", strerror(errno));
    if (rdma.bind_addr(listener->id, address->ai_addr) != 0)
        FAIL("rdma_bind_addr %s:%u: %s (is there an RDMA device on this address?)", host, port, strerror(errno));
    if (rdma.listen(listener->id, 64) != 0) FAIL("rdma_listen: %s", strerror(errno));
    freeaddrinfo(address);
    return listener;
fail:
    if (address) freeaddrinfo(address);
    xpu_rdma_listener_close(listener);
    return NULL;
}

uint16_t xpu_rdma_listener_port(xpu_rdma_listener *listener) { return ntohs(rdma.get_src_port(listener->id)); }

void xpu_rdma_listener_close(xpu_rdma_listener *listener) {
    if (!listener) return;
    if (listener->id) rdma.destroy_id(listener->id);
    if (listener->channel) rdma.destroy_event_channel(listener->channel);
    if (listener->wake[0] >= 0) close(listener->wake[0]);
    if (listener->wake[1] >= 0) close(listener->wake[1]);
    free(listener);
}

void xpu_rdma_listener_shutdown(xpu_rdma_listener *listener) {
    if (!listener) return;
    listener->shut_down = 1;
    char byte = 1;
    if (write(listener->wake[1], &byte, 1) < 0) { /* already woken */ }
}

static void fill_setup(const xpu_rdma_connection *c, struct setup_data *setup) {
    memset(setup, 0, sizeof *setup);
    setup->magic = SETUP_MAGIC;
    setup->slot_count = c->slot_count;
    setup->slot_bytes = c->slot_bytes;
    setup->bulk_count = c->bulk_count;
    setup->bulk_bytes = c->bulk_bytes;
    if (c->landing_mr) {
        setup->landing_rkey = c->landing_mr->rkey;
        setup->landing_address = (uintptr_t)c->landing_region;
    }
}

xpu_rdma_connection *xpu_rdma_accept(
    xpu_rdma_listener *listener, uint32_t slot_count, uint32_t slot_bytes, uint32_t bulk_count, uint32_t bulk_bytes,
    int *retry, char *error, size_t error_size) {
    *retry = 0;
    for (;;) {
        if (listener->shut_down) {
            if (error && error_size) snprintf(error, error_size, "the RDMA listener is shut down");
            return NULL;
        }
        struct pollfd fds[2] = {{.fd = listener->channel->fd, .events = POLLIN}, {.fd = listener->wake[0], .events = POLLIN}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            if (error && error_size) snprintf(error, error_size, "poll: %s", strerror(errno));
            return NULL;
        }
        if (listener->shut_down || (fds[1].revents & POLLIN)) continue;
        if (!(fds[0].revents & POLLIN)) continue;
        struct rdma_cm_event *event;
        if (rdma.get_cm_event(listener->channel, &event) != 0) {
            if (error && error_size) snprintf(error, error_size, "rdma_get_cm_event: %s", strerror(errno));
            return NULL;
        }
        if (event->event != RDMA_CM_EVENT_CONNECT_REQUEST) {
            rdma.ack_cm_event(event);
            continue;
        }
        // From here on a failure concerns this client only: the caller may accept the next.
        *retry = 1;
        struct rdma_cm_id *id = event->id;
        struct setup_data offered;
        memset(&offered, 0, sizeof offered);
        if (event->param.conn.private_data && event->param.conn.private_data_len >= sizeof offered)
            memcpy(&offered, event->param.conn.private_data, sizeof offered);
        rdma.ack_cm_event(event);
        if (offered.magic != SETUP_MAGIC || offered.slot_count != slot_count || offered.slot_bytes != slot_bytes ||
            offered.bulk_count != bulk_count || offered.bulk_bytes != bulk_bytes) {
            rdma.reject(id, NULL, 0);
            rdma.destroy_id(id);
            if (error && error_size)
                snprintf(error, error_size, "refused an RDMA client with a different protocol version or slot settings");
            return NULL;
        }
        xpu_rdma_connection *c = calloc(1, sizeof *c);
        if (!c) {
            rdma.reject(id, NULL, 0);
            rdma.destroy_id(id);
            return NULL;
        }
        c->slot_count = slot_count;
        c->slot_bytes = slot_bytes;
        c->bulk_count = bulk_count;
        c->bulk_bytes = bulk_bytes;
        c->peer_landing_address = offered.landing_address;
        c->peer_landing_rkey = offered.landing_rkey;
        c->id = id;
        // Each connection gets its own event channel, so its events never mix with others'.
        if (!(c->channel = rdma.create_event_channel()) || rdma.migrate_id(id, c->channel) != 0)
            FAIL("cannot give the connection its own event channel: %s", strerror(errno));
        if (setup_resources(c, error, error_size) != 0) goto fail;
        struct setup_data answer;
        fill_setup(c, &answer);
        struct rdma_conn_param parameters;
        memset(&parameters, 0, sizeof parameters);
        parameters.private_data = &answer;
        parameters.private_data_len = sizeof answer;
        parameters.rnr_retry_count = 7;
        parameters.retry_count = 7;
        if (rdma.accept(id, &parameters) != 0) FAIL("rdma_accept: %s", strerror(errno));
        if (expect_event(c->channel, RDMA_CM_EVENT_ESTABLISHED, NULL, error, error_size) != 0) goto fail;
        return c;
    fail:
        release(c);
        return NULL;
    }
}

xpu_rdma_connection *xpu_rdma_connect(
    const char *host, uint16_t port, uint32_t slot_count, uint32_t slot_bytes, uint32_t bulk_count, uint32_t bulk_bytes,
    int timeout_ms, char *error, size_t error_size) {
    if (xpu_verbs_load(error, error_size) != 0) return NULL;
    struct addrinfo *address = NULL;
    xpu_rdma_connection *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->slot_count = slot_count;
    c->slot_bytes = slot_bytes;
    c->bulk_count = bulk_count;
    c->bulk_bytes = bulk_bytes;
    if (resolve(host, port, &address, error, error_size) != 0) goto fail;
    if (!(c->channel = rdma.create_event_channel())) FAIL("rdma_create_event_channel: %s", strerror(errno));
    if (rdma.create_id(c->channel, &c->id, NULL, RDMA_PS_TCP) != 0) FAIL("rdma_create_id: %s", strerror(errno));
    if (rdma.resolve_addr(c->id, NULL, address->ai_addr, timeout_ms) != 0) FAIL("rdma_resolve_addr: %s", strerror(errno));
    if (expect_event(c->channel, RDMA_CM_EVENT_ADDR_RESOLVED, NULL, error, error_size) != 0) goto fail;
    if (rdma.resolve_route(c->id, timeout_ms) != 0) FAIL("rdma_resolve_route: %s", strerror(errno));
    if (expect_event(c->channel, RDMA_CM_EVENT_ROUTE_RESOLVED, NULL, error, error_size) != 0) goto fail;
    if (setup_resources(c, error, error_size) != 0) goto fail;
    struct setup_data offer;
    fill_setup(c, &offer);
    struct rdma_conn_param parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.private_data = &offer;
    parameters.private_data_len = sizeof offer;
    parameters.rnr_retry_count = 7;
    parameters.retry_count = 7;
    if (rdma.connect(c->id, &parameters) != 0) FAIL("rdma_connect: %s", strerror(errno));
    struct setup_data answer;
    if (expect_event(c->channel, RDMA_CM_EVENT_ESTABLISHED, &answer, error, error_size) != 0) goto fail;
    if (answer.magic != SETUP_MAGIC || answer.bulk_count != bulk_count || answer.bulk_bytes != bulk_bytes)
        FAIL("the RDMA server speaks a different protocol version or bulk settings");
    c->peer_landing_address = answer.landing_address;
    c->peer_landing_rkey = answer.landing_rkey;
    freeaddrinfo(address);
    return c;
fail:
    if (address) freeaddrinfo(address);
    release(c);
    return NULL;
}

void *xpu_rdma_send_slot(xpu_rdma_connection *c, uint32_t slot) { return c->send_region + (size_t)slot * c->slot_bytes; }
void *xpu_rdma_receive_slot(xpu_rdma_connection *c, uint32_t slot) {
    return c->receive_region + (size_t)slot * c->slot_bytes;
}

// wr_id: the slot, with bit 32 set for receives.
int xpu_rdma_post_receive(xpu_rdma_connection *c, uint32_t slot, char *error, size_t error_size) {
    struct ibv_sge entry = {.addr = (uintptr_t)xpu_rdma_receive_slot(c, slot), .length = c->slot_bytes,
                            .lkey = c->receive_mr->lkey};
    struct ibv_recv_wr request = {.wr_id = (1ull << 32) | slot, .sg_list = &entry, .num_sge = 1}, *bad = NULL;
    int status = ibv_post_recv(c->id->qp, &request, &bad);
    if (status != 0 && error && error_size) snprintf(error, error_size, "ibv_post_recv: %s", strerror(status));
    return status == 0 ? 0 : -1;
}

int xpu_rdma_post_send(xpu_rdma_connection *c, uint32_t slot, uint32_t length, char *error, size_t error_size) {
    struct ibv_sge entry = {.addr = (uintptr_t)xpu_rdma_send_slot(c, slot), .length = length, .lkey = c->send_mr->lkey};
    struct ibv_send_wr request, *bad = NULL;
    memset(&request, 0, sizeof request);
    request.wr_id = slot;
    request.sg_list = &entry;
    request.num_sge = 1;
    request.opcode = IBV_WR_SEND;
    request.send_flags = IBV_SEND_SIGNALED;
    int status = ibv_post_send(c->id->qp, &request, &bad);
    if (status != 0 && error && error_size) snprintf(error, error_size, "ibv_post_send: %s", strerror(status));
    return status == 0 ? 0 : -1;
}

void *xpu_rdma_staging_slot(xpu_rdma_connection *c, uint32_t slot) {
    return c->staging_region + (size_t)slot * c->bulk_bytes;
}
void *xpu_rdma_landing_slot(xpu_rdma_connection *c, uint32_t slot) {
    return c->landing_region + (size_t)slot * c->bulk_bytes;
}
uint64_t xpu_rdma_peer_landing_address(xpu_rdma_connection *c) { return c->peer_landing_address; }
uint32_t xpu_rdma_peer_landing_rkey(xpu_rdma_connection *c) { return c->peer_landing_rkey; }

int xpu_rdma_peer_host(xpu_rdma_connection *c, char *host, size_t host_size) {
    struct sockaddr *address = rdma_get_peer_addr(c->id);
    socklen_t length = address->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    return getnameinfo(address, length, host, (socklen_t)host_size, NULL, 0, NI_NUMERICHOST) == 0 ? 0 : -1;
}

// wr_id: the staging slot, with bit 33 set for writes.
int xpu_rdma_post_write(
    xpu_rdma_connection *c, uint32_t staging_slot, uint32_t length, uint64_t remote_address, uint32_t rkey, char *error,
    size_t error_size) {
    struct ibv_sge entry = {.addr = (uintptr_t)xpu_rdma_staging_slot(c, staging_slot), .length = length,
                            .lkey = c->staging_mr->lkey};
    struct ibv_send_wr request, *bad = NULL;
    memset(&request, 0, sizeof request);
    request.wr_id = (2ull << 32) | staging_slot;
    request.sg_list = &entry;
    request.num_sge = 1;
    request.opcode = IBV_WR_RDMA_WRITE;
    request.send_flags = IBV_SEND_SIGNALED;
    request.wr.rdma.remote_addr = remote_address;
    request.wr.rdma.rkey = rkey;
    int status = ibv_post_send(c->id->qp, &request, &bad);
    if (status != 0 && error && error_size) snprintf(error, error_size, "ibv_post_send (RDMA WRITE): %s", strerror(status));
    return status == 0 ? 0 : -1;
}

static int drain(xpu_rdma_connection *c, xpu_rdma_completion *out, int capacity, char *error, size_t error_size) {
    struct ibv_wc completions[32];
    if (capacity > 32) capacity = 32;
    int count = ibv_poll_cq(c->cq, capacity, completions);
    if (count < 0) {
        if (error && error_size) snprintf(error, error_size, "ibv_poll_cq failed");
        return -1;
    }
    for (int index = 0; index < count; index++) {
        out[index].kind = (int32_t)(completions[index].wr_id >> 32);
        out[index].slot = (uint32_t)completions[index].wr_id;
        out[index].length = completions[index].byte_len;
        out[index].status = completions[index].status;
        if (completions[index].status != IBV_WC_SUCCESS && error && error_size)
            snprintf(error, error_size, "work completion failed: %s", rdma.wc_status_str(completions[index].status));
    }
    return count;
}

int xpu_rdma_wait(
    xpu_rdma_connection *c, xpu_rdma_completion *out, int capacity, int timeout_ms, char *error, size_t error_size) {
    int count = drain(c, out, capacity, error, error_size);
    if (count != 0) return count;
    if (c->disconnected) return -2;
    // Arm the notification, then look again: a completion between the two is not missed.
    if (ibv_req_notify_cq(c->cq, 0) != 0) {
        if (error && error_size) snprintf(error, error_size, "ibv_req_notify_cq failed");
        return -1;
    }
    count = drain(c, out, capacity, error, error_size);
    if (count != 0) return count;
    struct pollfd fds[2] = {{.fd = c->completions->fd, .events = POLLIN}, {.fd = c->channel->fd, .events = POLLIN}};
    int ready = poll(fds, 2, timeout_ms);
    if (ready < 0 && errno != EINTR) {
        if (error && error_size) snprintf(error, error_size, "poll: %s", strerror(errno));
        return -1;
    }
    if (fds[1].revents & POLLIN) {
        struct rdma_cm_event *event;
        if (rdma.get_cm_event(c->channel, &event) == 0) {
            if (event->event == RDMA_CM_EVENT_DISCONNECTED || event->event == RDMA_CM_EVENT_DEVICE_REMOVAL ||
                event->event == RDMA_CM_EVENT_TIMEWAIT_EXIT)
                c->disconnected = 1;
            rdma.ack_cm_event(event);
        }
    }
    if (fds[0].revents & POLLIN) {
        struct ibv_cq *cq;
        void *context;
        if (rdma.get_cq_event(c->completions, &cq, &context) == 0) rdma.ack_cq_events(cq, 1);
    }
    count = drain(c, out, capacity, error, error_size);
    if (count != 0) return count;
    return c->disconnected ? -2 : 0;
}

void xpu_rdma_disconnect(xpu_rdma_connection *c) {
    if (!c) return;
    c->disconnected = 1;
    rdma.disconnect(c->id);
}

void xpu_rdma_close(xpu_rdma_connection *c) {
    if (!c) return;
    if (!c->disconnected) rdma.disconnect(c->id);
    release(c);
}
