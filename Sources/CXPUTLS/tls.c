// OpenSSL 3 through dlopen: see include/CXPUTLS.h. The OpenSSL headers are used for types and
// constants only (each pointer in the table has the exact type of the function it holds); no
// OpenSSL symbol is referenced at link time.
#define _GNU_SOURCE
#include "CXPUTLS.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define XPU_TLS_FUNCTIONS(SSL_FN, CRYPTO_FN) \
    SSL_FN(TLS_client_method) \
    SSL_FN(TLS_server_method) \
    SSL_FN(SSL_CTX_new) \
    SSL_FN(SSL_CTX_free) \
    SSL_FN(SSL_CTX_ctrl) \
    SSL_FN(SSL_CTX_use_certificate_chain_file) \
    SSL_FN(SSL_CTX_use_PrivateKey_file) \
    SSL_FN(SSL_CTX_check_private_key) \
    SSL_FN(SSL_CTX_load_verify_locations) \
    SSL_FN(SSL_CTX_set_default_verify_paths) \
    SSL_FN(SSL_CTX_set_verify) \
    SSL_FN(SSL_CTX_set_client_CA_list) \
    SSL_FN(SSL_load_client_CA_file) \
    SSL_FN(SSL_new) \
    SSL_FN(SSL_free) \
    SSL_FN(SSL_set_fd) \
    SSL_FN(SSL_set1_host) \
    SSL_FN(SSL_connect) \
    SSL_FN(SSL_accept) \
    SSL_FN(SSL_read) \
    SSL_FN(SSL_has_pending) \
    SSL_FN(SSL_write) \
    SSL_FN(SSL_get_error) \
    SSL_FN(SSL_shutdown) \
    SSL_FN(SSL_get_verify_result) \
    SSL_FN(SSL_get1_peer_certificate) \
    SSL_FN(SSL_get_version) \
    CRYPTO_FN(ERR_get_error) \
    CRYPTO_FN(ERR_error_string_n) \
    CRYPTO_FN(ERR_clear_error) \
    CRYPTO_FN(X509_get_subject_name) \
    CRYPTO_FN(X509_NAME_get_text_by_NID) \
    CRYPTO_FN(X509_free) \
    CRYPTO_FN(X509_verify_cert_error_string)

#define XPU_TLS_FIELD(name) __typeof__(&name) name;
static struct {
    XPU_TLS_FUNCTIONS(XPU_TLS_FIELD, XPU_TLS_FIELD)
} ossl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[512];
static int load_status = -1;

static void copy_text(char *error, size_t error_size, const char *text) {
    if (error && error_size > 0) snprintf(error, error_size, "%s", text);
}

static void load_libraries(void) {
    // RTLD_LOCAL: OpenSSL's symbols stay out of the global namespace of the host program.
    void *crypto = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!crypto) {
        snprintf(load_error, sizeof load_error, "cannot load libcrypto.so.3 (install OpenSSL 3): %s", dlerror());
        return;
    }
    void *ssl = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!ssl) {
        snprintf(load_error, sizeof load_error, "cannot load libssl.so.3 (install OpenSSL 3): %s", dlerror());
        return;
    }
#define XPU_TLS_RESOLVE(library, name) \
    if (!(*(void **)&ossl.name = dlsym(library, #name))) { \
        snprintf(load_error, sizeof load_error, "OpenSSL lacks %s (OpenSSL 3 is required)", #name); \
        return; \
    }
#define XPU_TLS_RESOLVE_SSL(name) XPU_TLS_RESOLVE(ssl, name)
#define XPU_TLS_RESOLVE_CRYPTO(name) XPU_TLS_RESOLVE(crypto, name)
    XPU_TLS_FUNCTIONS(XPU_TLS_RESOLVE_SSL, XPU_TLS_RESOLVE_CRYPTO)
    load_status = 0;
}

int xpu_tls_load(char *error, size_t error_size) {
    pthread_once(&load_once, load_libraries);
    if (load_status != 0) copy_text(error, error_size, load_error);
    return load_status;
}

/// OpenSSL's queued errors (most recent last), or `fallback` when the queue is empty.
static void describe_errors(char *error, size_t error_size, const char *what, const char *fallback) {
    char text[256];
    size_t used = 0;
    if (!error || error_size == 0) {
        ossl.ERR_clear_error();
        return;
    }
    used = (size_t)snprintf(error, error_size, "%s", what);
    unsigned long code;
    int any = 0;
    while ((code = ossl.ERR_get_error()) != 0) {
        ossl.ERR_error_string_n(code, text, sizeof text);
        if (used < error_size) used += (size_t)snprintf(error + used, error_size - used, "%s%s", any ? "; " : ": ", text);
        any = 1;
    }
    if (!any && fallback && used < error_size) snprintf(error + used, error_size - used, ": %s", fallback);
}

struct xpu_tls_context {
    SSL_CTX *ctx;
    int is_server;
};

struct xpu_tls_session {
    SSL *ssl;
    int fd;
    int is_server;
    int closed;
};

xpu_tls_context *xpu_tls_context_create(const xpu_tls_options *options, char *error, size_t error_size) {
    if (xpu_tls_load(error, error_size) != 0) return NULL;
    ossl.ERR_clear_error();
    SSL_CTX *ctx = ossl.SSL_CTX_new(options->is_server ? ossl.TLS_server_method() : ossl.TLS_client_method());
    if (!ctx) {
        describe_errors(error, error_size, "SSL_CTX_new", NULL);
        return NULL;
    }
    // TLS 1.3 only (SSL_CTX_set_min_proto_version is a macro over SSL_CTX_ctrl).
    if (ossl.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_3_VERSION, NULL) != 1) {
        describe_errors(error, error_size, "cannot require TLS 1.3", NULL);
        goto fail;
    }
    if (options->certificate_file && *options->certificate_file) {
        if (ossl.SSL_CTX_use_certificate_chain_file(ctx, options->certificate_file) != 1) {
            char what[600];
            snprintf(what, sizeof what, "cannot use certificate %s", options->certificate_file);
            describe_errors(error, error_size, what, NULL);
            goto fail;
        }
        const char *key = options->private_key_file && *options->private_key_file ? options->private_key_file
                                                                                     : options->certificate_file;
        if (ossl.SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
            char what[600];
            snprintf(what, sizeof what, "cannot use private key %s", key);
            describe_errors(error, error_size, what, NULL);
            goto fail;
        }
        if (ossl.SSL_CTX_check_private_key(ctx) != 1) {
            describe_errors(error, error_size, "the private key does not match the certificate", NULL);
            goto fail;
        }
    } else if (options->is_server) {
        copy_text(error, error_size, "a TLS server needs a certificate and a private key");
        goto fail;
    }
    if (options->ca_file && *options->ca_file) {
        if (ossl.SSL_CTX_load_verify_locations(ctx, options->ca_file, NULL) != 1) {
            char what[600];
            snprintf(what, sizeof what, "cannot load CA file %s", options->ca_file);
            describe_errors(error, error_size, what, NULL);
            goto fail;
        }
        if (options->is_server) {
            STACK_OF(X509_NAME) *names = ossl.SSL_load_client_CA_file(options->ca_file);
            if (names) ossl.SSL_CTX_set_client_CA_list(ctx, names);
            int mode = SSL_VERIFY_PEER | (options->require_peer_certificate ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
            ossl.SSL_CTX_set_verify(ctx, mode, NULL);
        }
    } else if (!options->is_server) {
        ossl.SSL_CTX_set_default_verify_paths(ctx);
    }
    if (!options->is_server) ossl.SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    xpu_tls_context *context = calloc(1, sizeof *context);
    if (!context) {
        copy_text(error, error_size, "out of memory");
        goto fail;
    }
    context->ctx = ctx;
    context->is_server = options->is_server;
    return context;
fail:
    ossl.SSL_CTX_free(ctx);
    return NULL;
}

void xpu_tls_context_free(xpu_tls_context *context) {
    if (!context) return;
    ossl.SSL_CTX_free(context->ctx);
    free(context);
}

xpu_tls_session *xpu_tls_session_create(
    xpu_tls_context *context, int fd, const char *expected_host, char *error, size_t error_size) {
    ossl.ERR_clear_error();
    SSL *ssl = ossl.SSL_new(context->ctx);
    if (!ssl) {
        describe_errors(error, error_size, "SSL_new", NULL);
        return NULL;
    }
    if (ossl.SSL_set_fd(ssl, fd) != 1 ||
        (!context->is_server && expected_host && *expected_host && ossl.SSL_set1_host(ssl, expected_host) != 1)) {
        describe_errors(error, error_size, "cannot set up the TLS session", NULL);
        ossl.SSL_free(ssl);
        return NULL;
    }
    xpu_tls_session *session = calloc(1, sizeof *session);
    if (!session) {
        ossl.SSL_free(ssl);
        copy_text(error, error_size, "out of memory");
        return NULL;
    }
    session->ssl = ssl;
    session->fd = fd;
    session->is_server = context->is_server;
    return session;
}

// OpenSSL writes to the socket with write(2): a vanished peer would raise SIGPIPE and kill the
// application. Block it on this thread around each call and swallow one that became pending.
typedef struct {
    sigset_t old;
    int was_pending;
} pipe_guard;

static void guard_begin(pipe_guard *guard) {
    sigset_t pipe_only, pending;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigpending(&pending);
    guard->was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &guard->old);
}

static void guard_end(pipe_guard *guard) {
    if (!guard->was_pending) {
        sigset_t pipe_only, pending;
        sigemptyset(&pipe_only);
        sigaddset(&pipe_only, SIGPIPE);
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE)) {
            struct timespec zero = {0, 0};
            int saved = errno;
            while (sigtimedwait(&pipe_only, NULL, &zero) == -1 && errno == EINTR) {}
            errno = saved;
        }
    }
    pthread_sigmask(SIG_SETMASK, &guard->old, NULL);
}

/// Describes a failed SSL_* call; returns 0 when it was the peer's clean close.
static int describe_failure(
    xpu_tls_session *session, int result, const char *what, char *error, size_t error_size) {
    int code = ossl.SSL_get_error(session->ssl, result);
    int saved = errno;
    switch (code) {
    case SSL_ERROR_ZERO_RETURN:
        session->closed = 1;
        ossl.ERR_clear_error();
        return 0;
    case SSL_ERROR_SYSCALL:
        if (saved == 0 || saved == EPIPE || saved == ECONNRESET) {
            describe_errors(error, error_size, what, "the peer closed the connection");
            session->closed = 1;
            return 0;
        }
        describe_errors(error, error_size, what, strerror(saved));
        return -1;
    case SSL_ERROR_SSL: {
        long verify = ossl.SSL_get_verify_result(session->ssl);
        describe_errors(error, error_size, what, NULL);
        if (verify != X509_V_OK && error) {
            size_t used = strlen(error);
            snprintf(error + used, error_size - used, " (certificate verification: %s)",
                ossl.X509_verify_cert_error_string(verify));
        }
        return -1;
    }
    default: {
        char text[64];
        snprintf(text, sizeof text, "SSL error %d", code);
        describe_errors(error, error_size, what, text);
        return -1;
    }
    }
}

int xpu_tls_handshake(xpu_tls_session *session, char *error, size_t error_size) {
    ossl.ERR_clear_error();
    pipe_guard guard;
    guard_begin(&guard);
    errno = 0;
    int result = session->is_server ? ossl.SSL_accept(session->ssl) : ossl.SSL_connect(session->ssl);
    if (result != 1) describe_failure(session, result, "TLS handshake failed", error, error_size);
    guard_end(&guard);
    if (result == 1 && !session->is_server) {
        // With SSL_VERIFY_PEER the handshake already failed on a bad chain; checked again for safety.
        long verify = ossl.SSL_get_verify_result(session->ssl);
        if (verify != X509_V_OK) {
            snprintf(error, error_size, "TLS handshake failed: server certificate: %s",
                ossl.X509_verify_cert_error_string(verify));
            return -1;
        }
    }
    return result == 1 ? 0 : -1;
}

long xpu_tls_write(xpu_tls_session *session, const void *bytes, size_t count, char *error, size_t error_size) {
    if (count == 0) return 0;
    int chunk = count > (1u << 30) ? (1 << 30) : (int)count;
    ossl.ERR_clear_error();
    pipe_guard guard;
    guard_begin(&guard);
    errno = 0;
    int written = ossl.SSL_write(session->ssl, bytes, chunk);
    long result = written;
    if (written <= 0) result = describe_failure(session, written, "TLS write", error, error_size);
    guard_end(&guard);
    return result;
}

long xpu_tls_read(xpu_tls_session *session, void *bytes, size_t count, char *error, size_t error_size) {
    if (count == 0) return 0;
    int chunk = count > (1u << 30) ? (1 << 30) : (int)count;
    ossl.ERR_clear_error();
    // Reading writes too: OpenSSL answers a broken stream (an unexpected end included) with an
    // alert, and a peer that vanished would then kill the application with SIGPIPE.
    pipe_guard guard;
    guard_begin(&guard);
    errno = 0;
    int read = ossl.SSL_read(session->ssl, bytes, chunk);
    long result = read > 0 ? read : describe_failure(session, read, "TLS read", error, error_size);
    guard_end(&guard);
    return result;
}

int xpu_tls_pending(xpu_tls_session *session) {
    return ossl.SSL_has_pending(session->ssl);
}

int xpu_tls_peer_common_name(xpu_tls_session *session, char *name, size_t name_size) {
    X509 *certificate = ossl.SSL_get1_peer_certificate(session->ssl);
    if (!certificate) return 0;
    int found = 0;
    if (ossl.SSL_get_verify_result(session->ssl) == X509_V_OK) {
        X509_NAME *subject = ossl.X509_get_subject_name(certificate);
        found = subject && ossl.X509_NAME_get_text_by_NID(subject, NID_commonName, name, (int)name_size) > 0;
    }
    ossl.X509_free(certificate);
    return found;
}

const char *xpu_tls_version(xpu_tls_session *session) { return ossl.SSL_get_version(session->ssl); }

void xpu_tls_session_free(xpu_tls_session *session) {
    if (!session) return;
    if (!session->closed) {
        pipe_guard guard;
        guard_begin(&guard);
        ossl.SSL_shutdown(session->ssl);
        guard_end(&guard);
    }
    ossl.ERR_clear_error();
    ossl.SSL_free(session->ssl);
    free(session);
}

// The relay (xpu_tls_relay): one thread, both sockets non-blocking, a buffer per direction. An
// SSL object may serve one thread at a time, reading included (TLS 1.3 may answer a read with a
// write), so the two directions cannot have a thread each; and a blocking relay could wait on a
// full socket in one direction while the other direction's peer waits on it. So each turn moves
// what it can both ways and polls only for what stopped it.
enum { relay_capacity = 256 << 10 };

typedef struct {
    unsigned char bytes[relay_capacity];
    size_t start, end;
} relay_buffer;

static int set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int xpu_tls_relay(xpu_tls_session *session, int plain, char *error, size_t error_size) {
    if (set_nonblocking(session->fd) != 0 || set_nonblocking(plain) != 0) {
        copy_text(error, error_size, "cannot make the relayed sockets non-blocking");
        return -1;
    }
    relay_buffer *up = malloc(sizeof *up), *down = malloc(sizeof *down);  // up: TLS -> plain
    if (!up || !down) {
        free(up);
        free(down);
        copy_text(error, error_size, "out of memory");
        return -1;
    }
    up->start = up->end = down->start = down->end = 0;
    int tls_open = 1, plain_open = 1, plain_write_shut = 0, status = 0;
    // A write that returned WANT_* must be repeated with the same length (OpenSSL's rule).
    size_t retry = 0;
    pipe_guard guard;
    guard_begin(&guard);
    for (;;) {
        int tls_events = 0, plain_events = 0, moved = 0;
        // TLS -> up. Decrypted bytes OpenSSL holds are read here too: poll cannot see them.
        while (tls_open && up->end < relay_capacity) {
            ossl.ERR_clear_error();
            errno = 0;
            int n = ossl.SSL_read(session->ssl, up->bytes + up->end, (int)(relay_capacity - up->end));
            if (n > 0) {
                up->end += (size_t)n;
                moved = 1;
                continue;
            }
            int code = ossl.SSL_get_error(session->ssl, n);
            if (code == SSL_ERROR_WANT_READ) tls_events |= POLLIN;
            else if (code == SSL_ERROR_WANT_WRITE) tls_events |= POLLOUT;
            else if (describe_failure(session, n, "TLS relay read", error, error_size) == 0) tls_open = 0;
            else { status = -1; goto done; }
            break;
        }
        // up -> plain.
        while (up->start < up->end) {
            ssize_t n = send(plain, up->bytes + up->start, up->end - up->start, MSG_NOSIGNAL);
            if (n > 0) {
                up->start += (size_t)n;
                moved = 1;
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                plain_events |= POLLOUT;
                break;
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else {
                goto done;  // the session's process is gone: end the client's connection
            }
        }
        if (up->start == up->end) up->start = up->end = 0;
        // The client ended its stream: so does the relay toward the process, once all is through.
        if (!tls_open && up->end == 0 && !plain_write_shut) {
            shutdown(plain, SHUT_WR);
            plain_write_shut = 1;
        }
        // plain -> down.
        while (plain_open && down->end < relay_capacity) {
            ssize_t n = recv(plain, down->bytes + down->end, relay_capacity - down->end, 0);
            if (n > 0) {
                down->end += (size_t)n;
                moved = 1;
            } else if (n == 0) {
                plain_open = 0;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                plain_events |= POLLIN;
                break;
            } else if (errno != EINTR) {
                plain_open = 0;
            }
        }
        // down -> TLS.
        while (down->start < down->end) {
            size_t length = retry ? retry : down->end - down->start;
            if (length > (1u << 30)) length = 1u << 30;
            ossl.ERR_clear_error();
            errno = 0;
            int n = ossl.SSL_write(session->ssl, down->bytes + down->start, (int)length);
            if (n > 0) {
                retry = 0;
                down->start += (size_t)n;
                moved = 1;
                continue;
            }
            int code = ossl.SSL_get_error(session->ssl, n);
            retry = length;
            if (code == SSL_ERROR_WANT_WRITE) tls_events |= POLLOUT;
            else if (code == SSL_ERROR_WANT_READ) tls_events |= POLLIN;
            else if (describe_failure(session, n, "TLS relay write", error, error_size) == 0) goto done;
            else { status = -1; goto done; }
            break;
        }
        if (down->start == down->end) down->start = down->end = 0;
        // The process ended its stream and everything it sent has gone to the client.
        if (!plain_open && down->end == 0) break;
        if (moved) continue;
        // Only what stopped this turn is waited for (a negative descriptor is skipped, so a
        // hung-up socket nothing waits on cannot make poll return at once forever).
        struct pollfd fds[2] = {
            {tls_events ? session->fd : -1, (short)tls_events, 0}, {plain_events ? plain : -1, (short)plain_events, 0}};
        if (poll(fds, 2, -1) < 0 && errno != EINTR) {
            copy_text(error, error_size, strerror(errno));
            status = -1;
            goto done;
        }
    }
    if (tls_open && !session->closed) ossl.SSL_shutdown(session->ssl);
done:
    guard_end(&guard);
    free(up);
    free(down);
    return status;
}
