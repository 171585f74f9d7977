#define _GNU_SOURCE
#include "CXPUShimSupport.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

/* cuGetProcAddress lookups (a linear scan: ~150 rows, asked a few times per program). */

const struct xpu_proc_entry *xpu_proc_lookup(const char *name) {
    if (name == NULL) return NULL;
    for (size_t i = 0; i < xpu_proc_table_count; i++) {
        if (strcmp(xpu_proc_table[i].name, name) == 0) return &xpu_proc_table[i];
    }
    return NULL;
}

/* Per-thread context stacks. */

static _Thread_local uint64_t context_stack[XPU_CONTEXT_STACK_CAPACITY];
static _Thread_local int context_depth;

uint64_t xpu_context_current(void) {
    return context_depth > 0 ? context_stack[context_depth - 1] : 0;
}

int xpu_context_push(uint64_t context) {
    if (context_depth >= XPU_CONTEXT_STACK_CAPACITY) return 0;
    context_stack[context_depth++] = context;
    return 1;
}

uint64_t xpu_context_pop(void) {
    return context_depth > 0 ? context_stack[--context_depth] : 0;
}

void xpu_context_set_current(uint64_t context) {
    if (context == 0) {
        (void)xpu_context_pop();
    } else if (context_depth == 0) {
        (void)xpu_context_push(context);
    } else {
        context_stack[context_depth - 1] = context;
    }
}

void xpu_context_forget(uint64_t context) {
    int kept = 0;
    for (int i = 0; i < context_depth; i++) {
        if (context_stack[i] != context) context_stack[kept++] = context_stack[i];
    }
    context_depth = kept;
}

/* The lane locks, the registry lock, and fork handling. */

/* Recursive: a call's bookkeeping runs under the lock that sent it, and may use helpers that lock. */
static pthread_mutex_t lane_mutexes[XPU_LANE_CAPACITY] = {
    [0 ... XPU_LANE_CAPACITY - 1] = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP};
static pthread_cond_t lane_conditions[XPU_LANE_CAPACITY] = {[0 ... XPU_LANE_CAPACITY - 1] = PTHREAD_COND_INITIALIZER};
static pthread_mutex_t registry_mutex = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_once_t fork_handlers_once = PTHREAD_ONCE_INIT;
static volatile uint64_t fork_generation;

void xpu_lane_lock(uint32_t lane) { pthread_mutex_lock(&lane_mutexes[lane]); }
void xpu_lane_unlock(uint32_t lane) { pthread_mutex_unlock(&lane_mutexes[lane]); }

void xpu_lane_wait(uint32_t lane, uint64_t timeout_ns) {
    if (timeout_ns == 0) {
        pthread_cond_wait(&lane_conditions[lane], &lane_mutexes[lane]);
        return;
    }
    /* On the monotonic clock: a wall clock stepped back (NTP at boot, a resumed VM) would hold
     * the queued calls back by the whole step. */
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    uint64_t nanoseconds = (uint64_t)deadline.tv_nsec + timeout_ns;
    deadline.tv_sec += (time_t)(nanoseconds / 1000000000u);
    deadline.tv_nsec = (long)(nanoseconds % 1000000000u);
    pthread_cond_clockwait(&lane_conditions[lane], &lane_mutexes[lane], CLOCK_MONOTONIC, &deadline);
}

void xpu_lane_signal(uint32_t lane) { pthread_cond_signal(&lane_conditions[lane]); }

void xpu_registry_lock(void) { pthread_mutex_lock(&registry_mutex); }
void xpu_registry_unlock(void) { pthread_mutex_unlock(&registry_mutex); }

/* Every lock is taken in the documented order (lanes ascending, the registry last), so taking
 * them all before fork cannot deadlock with a thread that holds some. */
static void before_fork(void) {
    for (int i = 0; i < XPU_LANE_CAPACITY; i++) pthread_mutex_lock(&lane_mutexes[i]);
    pthread_mutex_lock(&registry_mutex);
}

static void after_fork_in_parent(void) {
    pthread_mutex_unlock(&registry_mutex);
    for (int i = XPU_LANE_CAPACITY - 1; i >= 0; i--) pthread_mutex_unlock(&lane_mutexes[i]);
}

static void fresh_recursive_mutex(pthread_mutex_t *mutex) {
    pthread_mutexattr_t attributes;
    pthread_mutexattr_init(&attributes);
    pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(mutex, &attributes);
    pthread_mutexattr_destroy(&attributes);
}

static void after_fork_in_child(void) {
    fork_generation += 1;
    /* The child's thread has a new id, so it does not own the recursive locks its parent thread
     * took in before_fork: make fresh, unlocked ones instead of unlocking. */
    for (int i = 0; i < XPU_LANE_CAPACITY; i++) {
        fresh_recursive_mutex(&lane_mutexes[i]);
        pthread_cond_init(&lane_conditions[i], NULL);
    }
    fresh_recursive_mutex(&registry_mutex);
}

static void install(void) { pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child); }

void xpu_install_fork_handlers(void) { pthread_once(&fork_handlers_once, install); }

uint64_t xpu_fork_generation(void) { return fork_generation; }
