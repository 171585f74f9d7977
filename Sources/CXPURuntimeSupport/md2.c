/* MD2 (RFC 1319) and HMAC-MD2 (RFC 2104): the keyed hash of the INTEGRITY_CHECK export table.
 *
 * Ours rather than a library's because it is not security: the CUDA runtime checks that the
 * driver answers its challenge with this exact function of local addresses and ids, so it is part
 * of the runtime's protocol, not a protection. OpenSSL 3 has no MD2 in its default provider (and
 * the legacy provider that had it is often absent), and the simulated device, which answers the
 * table too, links no crypto library. */
#include <string.h>
#include "CXPURuntimeSupport.h"

/* RFC 1319's permutation of 0..255 built from the digits of pi. */
static const uint8_t md2_substitution[256] = {
    41, 46, 67, 201, 162, 216, 124, 1, 61, 54, 84, 161, 236, 240, 6, 19,
    98, 167, 5, 243, 192, 199, 115, 140, 152, 147, 43, 217, 188, 76, 130, 202,
    30, 155, 87, 60, 253, 212, 224, 22, 103, 66, 111, 24, 138, 23, 229, 18,
    190, 78, 196, 214, 218, 158, 222, 73, 160, 251, 245, 142, 187, 47, 238, 122,
    169, 104, 121, 145, 21, 178, 7, 63, 148, 194, 16, 137, 11, 34, 95, 33,
    128, 127, 93, 154, 90, 144, 50, 39, 53, 62, 204, 231, 191, 247, 151, 3,
    255, 25, 48, 179, 72, 165, 181, 209, 215, 94, 146, 42, 172, 86, 170, 198,
    79, 184, 56, 210, 150, 164, 125, 182, 118, 252, 107, 226, 156, 116, 4, 241,
    69, 157, 112, 89, 100, 113, 135, 32, 134, 91, 207, 101, 230, 45, 168, 2,
    27, 96, 37, 173, 174, 176, 185, 246, 28, 70, 97, 105, 52, 64, 126, 15,
    85, 71, 163, 35, 221, 81, 175, 58, 195, 92, 249, 206, 186, 197, 234, 38,
    44, 83, 13, 110, 133, 40, 132, 9, 211, 223, 205, 244, 65, 129, 77, 82,
    106, 220, 55, 200, 108, 193, 171, 250, 36, 225, 123, 8, 12, 189, 177, 74,
    120, 136, 149, 139, 227, 99, 232, 109, 233, 203, 213, 254, 59, 0, 29, 57,
    242, 239, 183, 14, 102, 88, 208, 228, 166, 119, 114, 248, 235, 117, 75, 10,
    49, 68, 80, 180, 143, 237, 31, 26, 219, 153, 141, 51, 159, 17, 131, 20,
};

struct md2 {
    uint8_t state[48];
    uint8_t checksum[16];
    uint8_t block[16];
    size_t filled;
};

static void md2_init(struct md2 *m) { memset(m, 0, sizeof *m); }

static void md2_block(struct md2 *m) {
    uint8_t last = m->checksum[15];
    for (int i = 0; i < 16; i++) {
        m->state[16 + i] = m->block[i];
        m->state[32 + i] = (uint8_t)(m->block[i] ^ m->state[i]);
        m->checksum[i] ^= md2_substitution[m->block[i] ^ last];
        last = m->checksum[i];
    }
    uint8_t t = 0;
    for (int round = 0; round < 18; round++) {
        for (int k = 0; k < 48; k++) t = m->state[k] ^= md2_substitution[t];
        t = (uint8_t)(t + round);
    }
}

static void md2_update(struct md2 *m, const uint8_t *bytes, size_t length) {
    for (size_t i = 0; i < length; i++) {
        m->block[m->filled++] = bytes[i];
        if (m->filled == 16) {
            md2_block(m);
            m->filled = 0;
        }
    }
}

static void md2_final(struct md2 *m, uint8_t digest[16]) {
    uint8_t pad = (uint8_t)(16 - m->filled);
    uint8_t padding[16];
    memset(padding, pad, sizeof padding);
    md2_update(m, padding, pad);
    uint8_t checksum[16];
    memcpy(checksum, m->checksum, 16);
    md2_update(m, checksum, 16);
    memcpy(digest, m->state, 16);
}

void xpu_md2(const void *message, size_t length, uint8_t digest[16]) {
    struct md2 m;
    md2_init(&m);
    md2_update(&m, message, length);
    md2_final(&m, digest);
}

void xpu_hmac_md2(const uint8_t key[16], const void *message, size_t length, uint8_t digest[16]) {
    uint8_t pad[16], inner[16];
    struct md2 m;
    for (int i = 0; i < 16; i++) pad[i] = key[i] ^ 0x36;
    md2_init(&m);
    md2_update(&m, pad, 16);
    md2_update(&m, message, length);
    md2_final(&m, inner);
    for (int i = 0; i < 16; i++) pad[i] = key[i] ^ 0x5c;
    md2_init(&m);
    md2_update(&m, pad, 16);
    md2_update(&m, inner, 16);
    md2_final(&m, digest);
}
