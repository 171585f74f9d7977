#define _GNU_SOURCE
#include "CXPUShm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#define MFD_ALLOW_SEALING 0x0002U
#endif

int xpu_shm_create(size_t size) {
    int fd = (int)syscall(SYS_memfd_create, "xpu-remote-rings", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    if (ftruncate(fd, (off_t)size) != 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int xpu_shm_check(int fd, size_t size) {
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) return -1;
    struct stat status;
    if (fstat(fd, &status) != 0 || (size_t)status.st_size != size) return -1;
    return 0;
}

void *xpu_shm_map(int fd, size_t size) {
    void *address = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return address == MAP_FAILED ? NULL : address;
}

void xpu_shm_unmap(void *address, size_t size) { munmap(address, size); }

int xpu_send_with_fd(int socket, const void *bytes, size_t count, int fd) {
    struct iovec vector = {.iov_base = (void *)bytes, .iov_len = count};
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr message = {.msg_iov = &vector, .msg_iovlen = 1, .msg_control = control.buffer,
                             .msg_controllen = sizeof control.buffer};
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &fd, sizeof(int));
    ssize_t sent;
    do {
        sent = sendmsg(socket, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) return -1;
    if ((size_t)sent != count) {
        errno = EMSGSIZE;
        return -1;
    }
    return 0;
}

int xpu_receive_with_fd(int socket, void *bytes, size_t count, int *fd) {
    *fd = -1;
    size_t received = 0;
    while (received < count) {
        struct iovec vector = {.iov_base = (char *)bytes + received, .iov_len = count - received};
        union {
            char buffer[CMSG_SPACE(sizeof(int) * 4)];
            struct cmsghdr align;
        } control;
        struct msghdr message = {.msg_iov = &vector, .msg_iovlen = 1, .msg_control = control.buffer,
                                 .msg_controllen = sizeof control.buffer};
        ssize_t got = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return -1;
        for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
            if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
            size_t descriptors = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t index = 0; index < descriptors; index++) {
                int passed;
                memcpy(&passed, CMSG_DATA(header) + index * sizeof(int), sizeof(int));
                // Keep the first descriptor; close any extra a peer sent.
                if (*fd < 0) *fd = passed; else close(passed);
            }
        }
        if (got == 0) {
            errno = ECONNRESET;
            return -1;
        }
        received += (size_t)got;
    }
    return 0;
}

uint64_t xpu_load_acquire_u64(const uint64_t *address) { return __atomic_load_n(address, __ATOMIC_ACQUIRE); }
void xpu_store_release_u64(uint64_t *address, uint64_t value) { __atomic_store_n(address, value, __ATOMIC_RELEASE); }
uint32_t xpu_load_u32(const uint32_t *address) { return __atomic_load_n(address, __ATOMIC_SEQ_CST); }
void xpu_store_u32(uint32_t *address, uint32_t value) { __atomic_store_n(address, value, __ATOMIC_SEQ_CST); }
uint32_t xpu_exchange_u32(uint32_t *address, uint32_t value) {
    return __atomic_exchange_n(address, value, __ATOMIC_SEQ_CST);
}
uint32_t xpu_fetch_add_u32(uint32_t *address, uint32_t value) {
    return __atomic_fetch_add(address, value, __ATOMIC_SEQ_CST);
}
void xpu_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

void xpu_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

int xpu_futex_wait(uint32_t *address, uint32_t expected, int timeout_ms) {
    struct timespec timeout = {.tv_sec = timeout_ms / 1000, .tv_nsec = (long)(timeout_ms % 1000) * 1000000L};
    // Not FUTEX_PRIVATE_FLAG: the word lives in memory shared between processes.
    long result = syscall(SYS_futex, address, FUTEX_WAIT, expected, timeout_ms < 0 ? NULL : &timeout, NULL, 0);
    return result != 0 && errno == ETIMEDOUT ? 1 : 0;
}

void xpu_futex_wake(uint32_t *address) { syscall(SYS_futex, address, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0); }

int xpu_socket_peer_gone(int socket) {
    struct pollfd poller = {.fd = socket, .events = POLLRDHUP | POLLIN};
    if (poll(&poller, 1, 0) <= 0) return 0;
    if (poller.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) return 1;
    if (poller.revents & POLLIN) {
        char byte;
        ssize_t got = recv(socket, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        return got == 0;
    }
    return 0;
}
