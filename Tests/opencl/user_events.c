/* User events waited for on one thread and set on another, as pyopencl's UserEvent does: a
 * thread blocked in clWaitForEvents on a user event, in clWaitForEvents on a kernel held back by
 * one, in clFinish of a queue whose kernel waits for one, and in a blocking read after such a
 * kernel, each returns once the main thread sets the status (a library that holds one lock
 * across a wait would never let clSetUserEventStatus through). Then event callbacks: on a
 * kernel held back by a user event, for CL_COMPLETE and CL_SUBMITTED, each called once with
 * its status. Last, on one thread, as pyopencl's get_async does: a non-blocking read after a
 * held-back kernel returns at once, a fill of the same buffer is queued after it, the user event
 * is set, and waiting for the read's event gives the kernel's data (not the fill's).
 *
 * The waiter thread tells the main thread it is about to wait; the main thread then gives it
 * 100 ms to block inside the call before setting the status. The pause only makes it likely
 * that the wait is already in the library (no call can tell a thread is blocked there); what is
 * checked never depends on it: the wait returns only after the status is set, and returns. */
#include "cl_test.h"

#include <pthread.h>
#include <time.h>

static const char *source =
    "__kernel void add(__global int *data, const int amount) {\n"
    "    data[get_global_id(0)] += amount;\n"
    "}\n";

enum { N = 1024 };

typedef enum { WAIT_EVENT, FINISH_QUEUE, READ_BUFFER } waiter_kind;

typedef struct {
    waiter_kind kind;
    cl_event event;
    cl_command_queue queue;
    cl_mem buffer;
    int *host;
    cl_int status;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int started;
    int returned;
} waiter;

static void *waiter_run(void *argument) {
    waiter *w = argument;
    pthread_mutex_lock(&w->lock);
    w->started = 1;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
    cl_int status = CL_SUCCESS;
    switch (w->kind) {
    case WAIT_EVENT: status = clWaitForEvents(1, &w->event); break;
    case FINISH_QUEUE: status = clFinish(w->queue); break;
    case READ_BUFFER:
        status = clEnqueueReadBuffer(w->queue, w->buffer, CL_TRUE, 0, N * sizeof(int), w->host, 0, NULL, NULL);
        break;
    }
    pthread_mutex_lock(&w->lock);
    w->status = status;
    w->returned = 1;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Starts `w` on a thread, sets `user` complete once the thread is (very likely) waiting, joins. */
static void wait_across_threads(const char *label, waiter *w, cl_event user) {
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->changed, NULL);
    pthread_t thread;
    if (pthread_create(&thread, NULL, waiter_run, w) != 0) {
        printf("FAIL pthread_create\n");
        exit(1);
    }
    pthread_mutex_lock(&w->lock);
    while (!w->started) pthread_cond_wait(&w->changed, &w->lock);
    pthread_mutex_unlock(&w->lock);
    struct timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
    pthread_mutex_lock(&w->lock);
    int early = w->returned;
    pthread_mutex_unlock(&w->lock);
    printf("%s\n", label);
    EXPECT_TRUE("  still waiting before the status is set", !early);
    CHECK(clSetUserEventStatus(user, CL_COMPLETE));
    pthread_join(thread, NULL);
    EXPECT("  the wait returned", w->status, CL_SUCCESS);
}

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t called;
    int calls;
    cl_int status;
    cl_event event;
} callback_record;

static void CL_CALLBACK record_callback(cl_event event, cl_int status, void *data) {
    callback_record *record = data;
    pthread_mutex_lock(&record->lock);
    record->calls++;
    record->status = status;
    record->event = event;
    pthread_cond_broadcast(&record->called);
    pthread_mutex_unlock(&record->lock);
}

static cl_event held_kernel(cl_test_env *env, cl_kernel kernel, cl_event user) {
    size_t global = N;
    cl_event run;
    CHECK(clEnqueueNDRangeKernel(env->queue, kernel, 1, NULL, &global, NULL, 1, &user, &run));
    CHECK(clFlush(env->queue));
    return run;
}

static cl_event user_event(cl_test_env *env) {
    cl_int status = CL_SUCCESS;
    cl_event event = clCreateUserEvent(env->context, &status);
    CHECK(status);
    return event;
}

int main(void) {
    cl_test_env env = cl_test_open(0);
    cl_program program = cl_test_build(&env, source, "");
    cl_kernel kernel = cl_test_kernel(program, "add");
    static int host[N], result[N];
    cl_mem buffer = cl_test_buffer(&env, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof host, host);
    int amount = 1;
    CHECK(clSetKernelArg(kernel, 0, sizeof(cl_mem), &buffer));
    CHECK(clSetKernelArg(kernel, 1, sizeof(int), &amount));

    cl_event user = user_event(&env);
    waiter on_user = {.kind = WAIT_EVENT, .event = user};
    wait_across_threads("clWaitForEvents on the user event", &on_user, user);
    cl_int status = -1;
    CHECK(clGetEventInfo(user, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL));
    EXPECT_TRUE("  the user event is complete", status == CL_COMPLETE);
    CHECK(clReleaseEvent(user));

    user = user_event(&env);
    cl_event run = held_kernel(&env, kernel, user);
    waiter on_kernel = {.kind = WAIT_EVENT, .event = run};
    wait_across_threads("clWaitForEvents on a kernel held back by a user event", &on_kernel, user);
    CHECK(clReleaseEvent(run));
    CHECK(clReleaseEvent(user));

    user = user_event(&env);
    run = held_kernel(&env, kernel, user);
    waiter finishing = {.kind = FINISH_QUEUE, .queue = env.queue};
    wait_across_threads("clFinish of a queue whose kernel waits for a user event", &finishing, user);
    CHECK(clReleaseEvent(run));
    CHECK(clReleaseEvent(user));

    user = user_event(&env);
    run = held_kernel(&env, kernel, user);
    waiter reading = {.kind = READ_BUFFER, .queue = env.queue, .buffer = buffer, .host = result};
    wait_across_threads("a blocking read after a kernel held back by a user event", &reading, user);
    int sums = 1;
    for (int i = 0; i < N; i++) sums &= result[i] == 3;
    EXPECT_TRUE("  the read sees all three kernels", sums);
    CHECK(clReleaseEvent(run));
    CHECK(clReleaseEvent(user));

    /* Callbacks on a held-back kernel, called once each after the user event is set. */
    user = user_event(&env);
    run = held_kernel(&env, kernel, user);
    callback_record complete = {.lock = PTHREAD_MUTEX_INITIALIZER, .called = PTHREAD_COND_INITIALIZER};
    callback_record submitted = {.lock = PTHREAD_MUTEX_INITIALIZER, .called = PTHREAD_COND_INITIALIZER};
    CHECK(clSetEventCallback(run, CL_COMPLETE, record_callback, &complete));
    CHECK(clSetEventCallback(run, CL_SUBMITTED, record_callback, &submitted));
    EXPECT("clSetEventCallback with no function", clSetEventCallback(run, CL_COMPLETE, NULL, NULL), CL_INVALID_VALUE);
    EXPECT("clSetEventCallback for an unknown status", clSetEventCallback(run, 7, record_callback, &complete), CL_INVALID_VALUE);
    CHECK(clSetUserEventStatus(user, CL_COMPLETE));
    CHECK(clFinish(env.queue));
    /* Callbacks run on threads of the platform's (or the library's) own, after the command ends:
     * wait for both, as an application must (10 s at most). */
    callback_record *records[] = {&complete, &submitted};
    for (int i = 0; i < 2; i++) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 10;
        pthread_mutex_lock(&records[i]->lock);
        while (records[i]->calls == 0 && pthread_cond_timedwait(&records[i]->called, &records[i]->lock, &deadline) == 0) {}
        pthread_mutex_unlock(&records[i]->lock);
    }
    printf("CL_COMPLETE callback: called %d time(s), status %s, with the event: %s\n", complete.calls,
           cl_error_name(complete.status), complete.event == run ? "yes" : "no");
    printf("CL_SUBMITTED callback: called %d time(s), status %s, with the event: %s\n", submitted.calls,
           submitted.status == CL_SUBMITTED ? "CL_SUBMITTED" : "another", submitted.event == run ? "yes" : "no");
    if (complete.calls != 1 || complete.status != CL_COMPLETE || submitted.calls != 1 || submitted.status != CL_SUBMITTED)
        cl_test_failures++;
    CHECK(clReleaseEvent(run));
    CHECK(clReleaseEvent(user));

    /* One thread: the read cannot wait for a user event only this thread will set. */
    user = user_event(&env);
    run = held_kernel(&env, kernel, user);
    cl_event read;
    for (int i = 0; i < N; i++) result[i] = -7;
    CHECK(clEnqueueReadBuffer(env.queue, buffer, CL_FALSE, 0, sizeof result, result, 0, NULL, &read));
    int zero = 0;
    CHECK(clEnqueueFillBuffer(env.queue, buffer, &zero, sizeof zero, 0, sizeof host, 0, NULL, NULL));
    cl_int read_status = -1;
    CHECK(clGetEventInfo(read, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof read_status, &read_status, NULL));
    EXPECT_TRUE("a non-blocking read after a held-back kernel returns, not complete", read_status > CL_COMPLETE);
    CHECK(clSetUserEventStatus(user, CL_COMPLETE));
    CHECK(clWaitForEvents(1, &read));
    sums = 1;
    for (int i = 0; i < N; i++) sums &= result[i] == 5; /* five kernels have added 1 */
    EXPECT_TRUE("  after the user event is set, the read has the kernel's data, not the later fill's", sums);
    CHECK(clReleaseEvent(read));
    CHECK(clReleaseEvent(run));
    CHECK(clReleaseEvent(user));

    CHECK(clReleaseMemObject(buffer));
    CHECK(clReleaseKernel(kernel));
    CHECK(clReleaseProgram(program));
    cl_test_close(&env);
    return cl_test_finish();
}
