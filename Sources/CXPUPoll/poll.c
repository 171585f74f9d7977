#include "CXPUPoll.h"

#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

int xpu_poller_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

static int watch(int poller, int fd, uint64_t id, uint32_t events) {
    struct epoll_event event = {.events = events, .data.u64 = id};
    return epoll_ctl(poller, EPOLL_CTL_ADD, fd, &event);
}

int xpu_poller_watch_once(int poller, int fd, uint64_t id) {
    return watch(poller, fd, id, EPOLLIN | EPOLLRDHUP | EPOLLONESHOT);
}

int xpu_poller_watch(int poller, int fd, uint64_t id) { return watch(poller, fd, id, EPOLLIN); }

int xpu_poller_watch_hangup_once(int poller, int fd, uint64_t id) {
    /* EPOLLHUP and EPOLLERR are always reported; EPOLLRDHUP adds a peer that shut down writing. */
    return watch(poller, fd, id, EPOLLRDHUP | EPOLLONESHOT);
}

int xpu_poller_forget(int poller, int fd) { return epoll_ctl(poller, EPOLL_CTL_DEL, fd, NULL); }

int xpu_poller_wait(int poller, uint64_t *ids, int capacity, int timeout_ms) {
    struct epoll_event events[64];
    if (capacity > 64) capacity = 64;
    int count = epoll_wait(poller, events, capacity, timeout_ms);
    for (int i = 0; i < count; i++) ids[i] = events[i].data.u64;
    return count;
}

int xpu_wakeup_create(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

void xpu_wakeup_signal(int wakeup) {
    uint64_t one = 1;
    (void)!write(wakeup, &one, sizeof one);
}

void xpu_wakeup_drain(int wakeup) {
    uint64_t value;
    (void)!read(wakeup, &value, sizeof value);
}
