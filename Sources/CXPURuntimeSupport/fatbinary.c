/*
 * fatbinary.c: how many bytes a fatbinary image spans, given only its address (cuModuleLoadData
 * and its relatives take a bare pointer). A fatbinary is one or more containers back to back, each
 * a 16-byte header (magic 0xBA55ED50, version 1, header size 16, u64 size of what follows) and its
 * entries, the next starting at the 8-byte boundary after the previous (the layout of a
 * .nv_fatbin section; some libraries hand the driver several containers as one image).
 *
 * The walk reads 16 bytes past each container to see whether another follows. Those bytes may lie
 * on a page the program never mapped (an image that ends at a page boundary), so a page not yet
 * known to be readable is asked about with mincore(2) first.
 *
 * The runtime registers every translation unit's container separately, by a wrapper that points
 * at it inside one .nv_fatbin section holding the next unit's container right after. Those loads
 * (export_tables.c, library.c) mark themselves with xpu_fatbinary_single_begin/end so that the
 * extent stops after the first container: otherwise each registration would carry, and choose
 * code among, every unit that follows it.
 */
#include "CXPURuntimeSupport.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FATBIN_MAGIC 0xBA55ED50u
/* No image is larger than this (the largest frame a module load may travel in is far smaller). */
#define FATBIN_EXTENT_LIMIT ((uint64_t)1 << 40)

static _Thread_local unsigned single_depth;

void xpu_fatbinary_single_begin(void) { single_depth++; }

void xpu_fatbinary_single_end(void) {
    if (single_depth > 0) single_depth--;
}

static uintptr_t page_size(void) {
    static uintptr_t size;
    if (size == 0) size = (uintptr_t)sysconf(_SC_PAGESIZE);
    return size;
}

/* Whether the byte at `address` is on a mapped page (mincore fails with ENOMEM where it is not). */
static int page_is_mapped(uintptr_t address) {
    unsigned char residency;
    void *page = (void *)(address & ~(page_size() - 1));
    return mincore(page, page_size(), &residency) == 0 || errno != ENOMEM;
}

/* The container header at `at`: its total size (header included), or 0 when none starts there. */
static uint64_t container_size(const unsigned char *at) {
    uint32_t magic;
    uint16_t version, header_size;
    uint64_t files_size;
    memcpy(&magic, at, 4);
    memcpy(&version, at + 4, 2);
    memcpy(&header_size, at + 6, 2);
    memcpy(&files_size, at + 8, 8);
    if (magic != FATBIN_MAGIC || version != 1 || header_size != 16 || files_size > FATBIN_EXTENT_LIMIT) return 0;
    return 16 + files_size;
}

size_t xpu_fatbinary_extent(const void *image) {
    const unsigned char *start = image;
    uint64_t extent = container_size(start);
    if (extent == 0 || single_depth > 0) return (size_t)extent;
    for (;;) {
        uint64_t next = (extent + 7) & ~(uint64_t)7;
        /* The probe's last byte, and the last byte known readable (the end of what was read). */
        uintptr_t probe_end = (uintptr_t)start + next + 16 - 1;
        uintptr_t known_end = (uintptr_t)start + extent - 1;
        if (probe_end / page_size() != known_end / page_size() && !page_is_mapped(probe_end)) break;
        uint64_t more = container_size(start + next);
        if (more == 0 || next + more > FATBIN_EXTENT_LIMIT) break;
        extent = next + more;
    }
    return (size_t)extent;
}
