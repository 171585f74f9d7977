// TLS 1.3 for xpu-remote's transports, on OpenSSL 3 loaded with dlopen at first use.
//
// Nothing here links libssl or libcrypto: xpu_tls_load() dlopens libssl.so.3 and libcrypto.so.3
// and resolves the few functions used into a table, so the shim (and the server) load on hosts
// without OpenSSL and only a tls:// connection needs it. Errors are written as text into the
// caller's buffer (OpenSSL's error queue and the certificate verification result), never secrets.
#ifndef CXPUTLS_H
#define CXPUTLS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Internal to the library that links this target (the shim exports only the API): hidden.
#pragma GCC visibility push(hidden)

typedef struct xpu_tls_context xpu_tls_context;
typedef struct xpu_tls_session xpu_tls_session;

/// Loads OpenSSL once per process (thread-safe). Returns 0, or -1 with the reason in `error`.
int xpu_tls_load(char *error, size_t error_size);

typedef struct xpu_tls_options {
    /// 1 for the accepting side.
    int is_server;
    /// PEM certificate chain and private key: required on the server, optional on the client
    /// (a client certificate for mutual TLS).
    const char *certificate_file;
    const char *private_key_file;
    /// PEM CA bundle that the peer's certificate must chain to. Client: NULL uses the system's
    /// default trust store. Server: NULL asks for no client certificate; set, client certificates
    /// are requested and verified.
    const char *ca_file;
    /// Server only, with ca_file: a client without a certificate fails the handshake.
    int require_peer_certificate;
} xpu_tls_options;

/// A configured SSL_CTX (TLS 1.3 only, peer verification on). NULL with the reason in `error`.
xpu_tls_context *xpu_tls_context_create(const xpu_tls_options *options, char *error, size_t error_size);
void xpu_tls_context_free(xpu_tls_context *context);

/// A TLS session over the connected socket `fd` (not owned). On the client, `expected_host`
/// (a DNS name or an IP address) must match the server certificate; NULL skips the name check.
xpu_tls_session *xpu_tls_session_create(
    xpu_tls_context *context, int fd, const char *expected_host, char *error, size_t error_size);
/// Runs the handshake (connect or accept). 0, or -1 with the reason in `error`.
int xpu_tls_handshake(xpu_tls_session *session, char *error, size_t error_size);
/// Writes up to `count` bytes: the number written (> 0), 0 when the peer closed the connection,
/// -1 with the reason in `error`.
long xpu_tls_write(xpu_tls_session *session, const void *bytes, size_t count, char *error, size_t error_size);
/// Reads up to `count` bytes: the number read (> 0), 0 at the end of the stream, -1 on error.
long xpu_tls_read(xpu_tls_session *session, void *bytes, size_t count, char *error, size_t error_size);
/// 1 when OpenSSL holds input not read yet (decrypted, or a record in progress): the next read
/// need not wait for the socket. 0 otherwise.
int xpu_tls_pending(xpu_tls_session *session);
/// The verified peer certificate's subject common name into `name`; 1 when there is one, else 0.
int xpu_tls_peer_common_name(xpu_tls_session *session, char *name, size_t name_size);
/// The negotiated protocol ("TLSv1.3").
const char *xpu_tls_version(xpu_tls_session *session);
/// Relays between the session and the connected stream socket `plain` (both made non-blocking)
/// until the plain side has ended its stream and everything it sent has reached the TLS peer, or
/// either side fails; the TLS peer's end of stream is passed on as a write shutdown of `plain`.
/// For a server that hands a TLS session's plaintext to another process. 0 when the stream
/// ended, -1 with the reason in `error`.
int xpu_tls_relay(xpu_tls_session *session, int plain, char *error, size_t error_size);
/// Sends close_notify (best effort, does not wait for the peer's) and frees the session.
void xpu_tls_session_free(xpu_tls_session *session);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
