// SHA-256 of module images for the server's module cache, from OpenSSL 3's libcrypto loaded with
// dlopen at first use (as CXPUTLS loads libssl): the shim links nothing beyond libc, so it loads
// on hosts without OpenSSL and then sends every image whole. OpenSSL's headers give the types
// only (each pointer in the table has the exact type of the function it holds).
#define _GNU_SOURCE
#include "CXPUShimSupport.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include <openssl/evp.h>

#define XPU_DIGEST_FUNCTIONS(FN) \
    FN(EVP_Digest) \
    FN(EVP_sha256)

#define XPU_DIGEST_FIELD(name) __typeof__(&name) name;
static struct {
    XPU_DIGEST_FUNCTIONS(XPU_DIGEST_FIELD)
} crypto;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[256];
static int load_status = -1;

static void load_crypto(void) {
    // RTLD_LOCAL: OpenSSL's symbols stay out of the host program's global namespace.
    void *library = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        snprintf(load_error, sizeof load_error, "cannot load libcrypto.so.3: %s", dlerror());
        return;
    }
#define XPU_DIGEST_RESOLVE(name) \
    if (!(*(void **)&crypto.name = dlsym(library, #name))) { \
        snprintf(load_error, sizeof load_error, "libcrypto.so.3 lacks %s", #name); \
        return; \
    }
    XPU_DIGEST_FUNCTIONS(XPU_DIGEST_RESOLVE)
    load_status = 0;
}

const char *xpu_digest_unavailable(void) {
    pthread_once(&load_once, load_crypto);
    return load_status == 0 ? NULL : load_error;
}

const char *xpu_digest_unavailable_first(void) {
    static int reported;
    const char *reason = xpu_digest_unavailable();
    if (!reason || __atomic_exchange_n(&reported, 1, __ATOMIC_RELAXED)) return NULL;
    return reason;
}

int xpu_sha256(const void *message, size_t length, uint8_t digest[32]) {
    if (xpu_digest_unavailable()) return -1;
    unsigned int written = 0;
    if (crypto.EVP_Digest(message, length, digest, &written, crypto.EVP_sha256(), NULL) != 1 || written != 32) return -1;
    return 0;
}
