/*
 * CXPUPoll.h: readiness of many sockets from one thread (Linux epoll), and an eventfd to wake
 * that thread; for the server's connection lobby and the transports' hang-up watch. Wrapped in
 * C so Swift never sees the packed struct epoll_event.
 */
#ifndef CXPU_POLL_H
#define CXPU_POLL_H

#include <stdint.h>

/* A close-on-exec epoll instance, or -1 (errno set). */
int xpu_poller_create(void);

/* Watches `fd` for input, end of stream or error, once: after one report it is disarmed until
 * watched again. `id` is what xpu_poller_wait reports for it. 0 or -1 (errno set). */
int xpu_poller_watch_once(int poller, int fd, uint64_t id);

/* Watches `fd` for input, reported every time (level-triggered). 0 or -1 (errno set). */
int xpu_poller_watch(int poller, int fd, uint64_t id);

/* Watches `fd` for its peer hanging up (end of stream, reset or error; not for input), once.
 * 0 or -1 (errno set). */
int xpu_poller_watch_hangup_once(int poller, int fd, uint64_t id);

/* Stops watching `fd`. */
int xpu_poller_forget(int poller, int fd);

/* Waits up to `timeout_ms` (-1: no limit) for watched descriptors to be ready and stores up to
 * `capacity` of their ids in `ids`. Returns how many, 0 on timeout, -1 on error (errno set). */
int xpu_poller_wait(int poller, uint64_t *ids, int capacity, int timeout_ms);

/* A close-on-exec, non-blocking eventfd, or -1 (errno set). */
int xpu_wakeup_create(void);

/* Makes the eventfd readable. */
void xpu_wakeup_signal(int wakeup);

/* Makes the eventfd unreadable again. */
void xpu_wakeup_drain(int wakeup);

#endif
