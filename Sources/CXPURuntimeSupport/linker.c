/*
 * The driver's linker (cuLinkCreate, cuLinkAddData, cuLinkAddFile, cuLinkComplete, cuLinkDestroy),
 * run in the calling process: numba-cuda and cuda.core link through it when nvJitLink is absent.
 *
 * The linked image is what cuModuleLoadData of the driver that runs it accepts:
 * - PTX inputs are joined into one PTX module (the newest .version of the inputs, the first
 *   input's .target and .address_size, then every input's code in the order added). The driver
 *   compiles it at load, so the simulated device interprets it and a real driver JIT-compiles it;
 *   an extern declaration in one input and its definition in another meet in the one module.
 * - A single cubin or fatbinary input is the image as it is.
 * Relocatable objects, libraries, NVVM IR, and cubins or fatbinaries mixed with other inputs need
 * a device linker (nvJitLink or a real driver's): they fail with CUDA_ERROR_NOT_SUPPORTED and a
 * line in the error log.
 *
 * The log options are honoured as CUDA documents them: CU_JIT_INFO_LOG_BUFFER and
 * CU_JIT_ERROR_LOG_BUFFER receive NUL-terminated text at each call that has something to say, and
 * the matching *_SIZE_BYTES entries of the caller's option values are set to the bytes written
 * (NUL included). The buffers and the option-value array must live until cuLinkDestroy.
 * CU_JIT_LOG_VERBOSE adds an info line per input and for the result. Other options are accepted
 * and have no effect.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "CXPURuntimeSupport.h"

#define FATBIN_MAGIC 0xBA55ED50u
#define ELF_MAGIC 0x464C457Fu

struct link_input {
    CUjitInputType type;
    char *bytes;
    size_t size;
};

struct link_log {
    char *buffer;
    size_t capacity;
    size_t used;
    size_t sizeOption; /* index of the *_SIZE_BYTES entry in the creator's option values, or SIZE_MAX */
};

struct xpu_link_state {
    struct link_input *inputs;
    size_t count, capacity;
    void **optionValues;
    struct link_log info, error;
    int verbose;
    char *image;
    size_t imageSize;
    struct xpu_link_state *next;
};

static pthread_mutex_t link_lock = PTHREAD_MUTEX_INITIALIZER;
static struct xpu_link_state *link_states;

/* `state` when it is a live link state; callers use one state from one thread at a time, as CUDA asks. */
static struct xpu_link_state *live_state(CUlinkState state) {
    struct xpu_link_state *found = NULL;
    pthread_mutex_lock(&link_lock);
    for (struct xpu_link_state *s = link_states; s != NULL; s = s->next) {
        if ((CUlinkState)s == state) found = s;
    }
    pthread_mutex_unlock(&link_lock);
    return found;
}

/* Appends a line to a log buffer (truncated to its capacity) and reports the bytes written. */
__attribute__((format(printf, 3, 4))) static void log_line(struct xpu_link_state *state, struct link_log *log,
                                                          const char *format, ...) {
    if (log->buffer == NULL || log->capacity == 0) return;
    size_t room = log->capacity - log->used;
    if (room <= 1) return;
    va_list arguments;
    va_start(arguments, format);
    int written = vsnprintf(log->buffer + log->used, room, format, arguments);
    va_end(arguments);
    if (written < 0) return;
    log->used += (size_t)written < room ? (size_t)written : room - 1;
    if (log->sizeOption != SIZE_MAX) state->optionValues[log->sizeOption] = (void *)(uintptr_t)(log->used + 1);
}

static CUresult link_create(unsigned int numOptions, CUjit_option *options, void **optionValues, CUlinkState *stateOut) {
    if (stateOut == NULL || (numOptions > 0 && (options == NULL || optionValues == NULL))) return CUDA_ERROR_INVALID_VALUE;
    CUcontext current = NULL;
    CUresult result = cuCtxGetCurrent(&current);
    if (result != CUDA_SUCCESS) return result;
    if (current == NULL) return CUDA_ERROR_INVALID_CONTEXT;
    struct xpu_link_state *state = calloc(1, sizeof *state);
    if (state == NULL) return CUDA_ERROR_OUT_OF_MEMORY;
    state->optionValues = optionValues;
    state->info.sizeOption = state->error.sizeOption = SIZE_MAX;
    for (unsigned int i = 0; i < numOptions; i++) {
        uintptr_t value = (uintptr_t)optionValues[i];
        switch (options[i]) {
        case CU_JIT_INFO_LOG_BUFFER: state->info.buffer = (char *)optionValues[i]; break;
        case CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES: state->info.capacity = value, state->info.sizeOption = i; break;
        case CU_JIT_ERROR_LOG_BUFFER: state->error.buffer = (char *)optionValues[i]; break;
        case CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES: state->error.capacity = value, state->error.sizeOption = i; break;
        case CU_JIT_LOG_VERBOSE: state->verbose = value != 0; break;
        default: break;
        }
    }
    /* Logs start empty, as the driver leaves them when it has nothing to say. */
    if (state->info.buffer != NULL && state->info.capacity > 0) state->info.buffer[0] = '\0';
    if (state->error.buffer != NULL && state->error.capacity > 0) state->error.buffer[0] = '\0';
    pthread_mutex_lock(&link_lock);
    state->next = link_states;
    link_states = state;
    pthread_mutex_unlock(&link_lock);
    *stateOut = (CUlinkState)state;
    return CUDA_SUCCESS;
}

CUresult cuLinkCreate_v2(unsigned int numOptions, CUjit_option *options, void **optionValues, CUlinkState *stateOut) {
    return link_create(numOptions, options, optionValues, stateOut);
}

CUresult cuLinkCreate(unsigned int numOptions, CUjit_option *options, void **optionValues, CUlinkState *stateOut) {
    return link_create(numOptions, options, optionValues, stateOut);
}

static const char *input_kind(CUjitInputType type) {
    switch (type) {
    case CU_JIT_INPUT_CUBIN: return "cubin";
    case CU_JIT_INPUT_PTX: return "PTX";
    case CU_JIT_INPUT_FATBINARY: return "fatbinary";
    case CU_JIT_INPUT_OBJECT: return "relocatable object";
    case CU_JIT_INPUT_LIBRARY: return "library";
    case CU_JIT_INPUT_NVVM: return "NVVM IR";
    }
    return "unknown input";
}

static CUresult add_input(struct xpu_link_state *state, CUjitInputType type, const void *data, size_t size, const char *name) {
    if ((unsigned)type > CU_JIT_INPUT_NVVM) return CUDA_ERROR_INVALID_VALUE;
    if (type == CU_JIT_INPUT_OBJECT || type == CU_JIT_INPUT_LIBRARY || type == CU_JIT_INPUT_NVVM) {
        log_line(state, &state->error, "error: %s input '%s': xpu-remote's linker joins PTX, or passes one cubin or fatbinary through; this input needs a device linker\n",
                 input_kind(type), name != NULL ? name : "");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (type == CU_JIT_INPUT_PTX) {
        /* PTX is text: the size may or may not count a terminating NUL. */
        const char *text = data;
        size = strnlen(text, size);
        if (size == 0) {
            log_line(state, &state->error, "error: PTX input '%s' is empty\n", name != NULL ? name : "");
            return CUDA_ERROR_INVALID_PTX;
        }
    }
    if (state->count == state->capacity) {
        size_t capacity = state->capacity == 0 ? 4 : state->capacity * 2;
        struct link_input *grown = realloc(state->inputs, capacity * sizeof *grown);
        if (grown == NULL) return CUDA_ERROR_OUT_OF_MEMORY;
        state->inputs = grown, state->capacity = capacity;
    }
    char *copy = malloc(size + 1);
    if (copy == NULL) return CUDA_ERROR_OUT_OF_MEMORY;
    memcpy(copy, data, size);
    copy[size] = '\0';
    state->inputs[state->count++] = (struct link_input){type, copy, size};
    if (state->verbose) log_line(state, &state->info, "info: added %s input '%s' (%zu bytes)\n", input_kind(type), name != NULL ? name : "", size);
    return CUDA_SUCCESS;
}

static CUresult link_add_data(CUlinkState handle, CUjitInputType type, void *data, size_t size, const char *name) {
    struct xpu_link_state *state = live_state(handle);
    if (state == NULL) return CUDA_ERROR_INVALID_HANDLE;
    if (data == NULL || size == 0) return CUDA_ERROR_INVALID_VALUE;
    if (state->image != NULL) return CUDA_ERROR_INVALID_VALUE;
    return add_input(state, type, data, size, name);
}

CUresult cuLinkAddData_v2(CUlinkState state, CUjitInputType type, void *data, size_t size, const char *name,
                          unsigned int numOptions, CUjit_option *options, void **optionValues) {
    (void)numOptions, (void)options, (void)optionValues;
    return link_add_data(state, type, data, size, name);
}

CUresult cuLinkAddData(CUlinkState state, CUjitInputType type, void *data, size_t size, const char *name,
                       unsigned int numOptions, CUjit_option *options, void **optionValues) {
    (void)numOptions, (void)options, (void)optionValues;
    return link_add_data(state, type, data, size, name);
}

static CUresult link_add_file(CUlinkState handle, CUjitInputType type, const char *path) {
    struct xpu_link_state *state = live_state(handle);
    if (state == NULL) return CUDA_ERROR_INVALID_HANDLE;
    if (path == NULL) return CUDA_ERROR_INVALID_VALUE;
    if (state->image != NULL) return CUDA_ERROR_INVALID_VALUE;
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        log_line(state, &state->error, "error: cannot open '%s': %s\n", path, strerror(errno));
        return CUDA_ERROR_FILE_NOT_FOUND;
    }
    char *bytes = NULL;
    size_t size = 0, capacity = 0;
    CUresult result = CUDA_SUCCESS;
    for (;;) {
        if (size == capacity) {
            capacity = capacity == 0 ? 1 << 16 : capacity * 2;
            char *grown = realloc(bytes, capacity);
            if (grown == NULL) {
                result = CUDA_ERROR_OUT_OF_MEMORY;
                break;
            }
            bytes = grown;
        }
        size_t got = fread(bytes + size, 1, capacity - size, file);
        size += got;
        if (got == 0) {
            if (ferror(file)) {
                log_line(state, &state->error, "error: cannot read '%s'\n", path);
                result = CUDA_ERROR_FILE_NOT_FOUND;
            }
            break;
        }
    }
    fclose(file);
    if (result == CUDA_SUCCESS) {
        if (size == 0) {
            log_line(state, &state->error, "error: '%s' is empty\n", path);
            result = CUDA_ERROR_INVALID_IMAGE;
        } else {
            const char *slash = strrchr(path, '/');
            result = add_input(state, type, bytes, size, slash != NULL ? slash + 1 : path);
        }
    }
    free(bytes);
    return result;
}

CUresult cuLinkAddFile_v2(CUlinkState state, CUjitInputType type, const char *path, unsigned int numOptions,
                          CUjit_option *options, void **optionValues) {
    (void)numOptions, (void)options, (void)optionValues;
    return link_add_file(state, type, path);
}

CUresult cuLinkAddFile(CUlinkState state, CUjitInputType type, const char *path, unsigned int numOptions,
                       CUjit_option *options, void **optionValues) {
    (void)numOptions, (void)options, (void)optionValues;
    return link_add_file(state, type, path);
}

/* A growing byte string for the joined PTX. */
struct text {
    char *bytes;
    size_t length, capacity;
    int failed;
};

static void append(struct text *text, const char *bytes, size_t length) {
    if (text->failed) return;
    if (text->length + length + 1 > text->capacity) {
        size_t capacity = text->capacity == 0 ? 4096 : text->capacity;
        while (text->length + length + 1 > capacity) capacity *= 2;
        char *grown = realloc(text->bytes, capacity);
        if (grown == NULL) {
            text->failed = 1;
            return;
        }
        text->bytes = grown, text->capacity = capacity;
    }
    memcpy(text->bytes + text->length, bytes, length);
    text->length += length;
    text->bytes[text->length] = '\0';
}

/* The directive a line starts with (after blanks), if it is one of a module's header directives. */
static const char *header_directive(const char *line, const char *end) {
    while (line < end && (*line == ' ' || *line == '\t')) line++;
    static const char *const directives[] = {".version", ".target", ".address_size"};
    for (size_t i = 0; i < sizeof directives / sizeof directives[0]; i++) {
        size_t n = strlen(directives[i]);
        if ((size_t)(end - line) > n && memcmp(line, directives[i], n) == 0 && (line[n] == ' ' || line[n] == '\t'))
            return directives[i];
    }
    return NULL;
}

/* "major.minor" of a `.version` line as major * 100 + minor, or -1. */
static int ptx_version(const char *ptx) {
    const char *at = strstr(ptx, ".version");
    unsigned major, minor;
    if (at == NULL || sscanf(at, ".version %u.%u", &major, &minor) != 2) return -1;
    return (int)(major * 100 + minor);
}

/* The header line of `directive` in `ptx` (without its line end), or NULL. */
static const char *header_line(const char *ptx, const char *directive, size_t *length) {
    for (const char *line = ptx; *line != '\0';) {
        const char *end = strchr(line, '\n');
        if (end == NULL) end = line + strlen(line);
        const char *found = header_directive(line, end);
        if (found == directive) {
            *length = (size_t)(end - line);
            return line;
        }
        line = *end == '\0' ? end : end + 1;
    }
    return NULL;
}

static CUresult join_ptx(struct xpu_link_state *state, struct text *out) {
    const struct link_input *newest = &state->inputs[0];
    for (size_t i = 1; i < state->count; i++) {
        if (ptx_version(state->inputs[i].bytes) > ptx_version(newest->bytes)) newest = &state->inputs[i];
    }
    const char *directives[] = {".version", ".target", ".address_size"};
    for (size_t d = 0; d < 3; d++) {
        const struct link_input *from = d == 0 ? newest : &state->inputs[0];
        size_t length = 0;
        const char *line = header_line(from->bytes, directives[d], &length);
        if (line == NULL) {
            if (d == 2) continue; /* .address_size is optional */
            log_line(state, &state->error, "error: a PTX input has no %s directive\n", directives[d]);
            return CUDA_ERROR_INVALID_PTX;
        }
        append(out, line, length);
        append(out, "\n", 1);
    }
    for (size_t i = 0; i < state->count; i++) {
        for (const char *line = state->inputs[i].bytes; *line != '\0';) {
            const char *end = strchr(line, '\n');
            if (end == NULL) end = line + strlen(line);
            if (header_directive(line, end) == NULL) {
                append(out, line, (size_t)(end - line));
                append(out, "\n", 1);
            }
            line = *end == '\0' ? end : end + 1;
        }
    }
    return out->failed ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
}

CUresult cuLinkComplete(CUlinkState handle, void **cubinOut, size_t *sizeOut) {
    struct xpu_link_state *state = live_state(handle);
    if (state == NULL) return CUDA_ERROR_INVALID_HANDLE;
    if (cubinOut == NULL || sizeOut == NULL) return CUDA_ERROR_INVALID_VALUE;
    if (state->image == NULL) {
        if (state->count == 0) {
            log_line(state, &state->error, "error: nothing to link\n");
            return CUDA_ERROR_INVALID_VALUE;
        }
        size_t ptx = 0;
        for (size_t i = 0; i < state->count; i++) ptx += state->inputs[i].type == CU_JIT_INPUT_PTX;
        if (ptx == state->count) {
            struct text joined = {0};
            CUresult result = join_ptx(state, &joined);
            if (result != CUDA_SUCCESS) {
                free(joined.bytes);
                return result;
            }
            state->image = joined.bytes;
            state->imageSize = joined.length + 1;
        } else if (state->count == 1) {
            struct link_input *only = &state->inputs[0];
            uint32_t magic = 0;
            if (only->size >= sizeof magic) memcpy(&magic, only->bytes, sizeof magic);
            if (magic != ELF_MAGIC && magic != FATBIN_MAGIC) {
                log_line(state, &state->error, "error: the %s input is neither an ELF image nor a fatbinary\n", input_kind(only->type));
                return CUDA_ERROR_INVALID_IMAGE;
            }
            state->image = only->bytes;
            state->imageSize = only->size;
            only->bytes = NULL;
        } else {
            log_line(state, &state->error, "error: %zu inputs of which %zu not PTX: xpu-remote's linker joins PTX, or passes one cubin or fatbinary through\n",
                     state->count, state->count - ptx);
            return CUDA_ERROR_NOT_SUPPORTED;
        }
        if (state->verbose) log_line(state, &state->info, "info: linked %zu input(s) into %zu bytes\n", state->count, state->imageSize);
    }
    *cubinOut = state->image;
    *sizeOut = state->imageSize;
    return CUDA_SUCCESS;
}

CUresult cuLinkDestroy(CUlinkState handle) {
    struct xpu_link_state *state = NULL;
    pthread_mutex_lock(&link_lock);
    for (struct xpu_link_state **link = &link_states; *link != NULL; link = &(*link)->next) {
        if ((CUlinkState)*link == handle) {
            state = *link;
            *link = state->next;
            break;
        }
    }
    pthread_mutex_unlock(&link_lock);
    if (state == NULL) return CUDA_ERROR_INVALID_HANDLE;
    for (size_t i = 0; i < state->count; i++) free(state->inputs[i].bytes);
    free(state->inputs);
    free(state->image);
    free(state);
    return CUDA_SUCCESS;
}
