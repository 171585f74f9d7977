/* Fork: a child does not inherit its parent's session. It initializes its own and works; the
 * parent's session is untouched. (Run through the shim only: a real driver forbids CUDA in a
 * forked child, so there is no direct counterpart.) */
#include "xpu_test.h"
#include <sys/wait.h>
#include <unistd.h>

static int use_device(const char *who, unsigned seed) {
    CUcontext ctx;
    CUdevice device;
    CUdeviceptr d;
    unsigned char in[4096], out[4096];
    xpu_fill(in, sizeof in, seed);
    if (cuDeviceGet(&device, 0) != CUDA_SUCCESS || cuCtxCreate(&ctx, NULL, 0, device) != CUDA_SUCCESS) return 1;
    if (cuMemAlloc(&d, sizeof in) != CUDA_SUCCESS) return 1;
    if (cuMemcpyHtoD(d, in, sizeof in) != CUDA_SUCCESS || cuMemcpyDtoH(out, d, sizeof out) != CUDA_SUCCESS) return 1;
    int ok = memcmp(in, out, sizeof in) == 0;
    printf("%s: round trip %s\n", who, ok ? "ok" : "CORRUPT");
    fflush(stdout);
    cuMemFree(d);
    cuCtxDestroy(ctx);
    return ok ? 0 : 1;
}

int main(void) {
    CHECK(cuInit(0));
    CUcontext parent_ctx;
    CUdevice device;
    CHECK(cuDeviceGet(&device, 0));
    CHECK(cuCtxCreate(&parent_ctx, NULL, 0, device));
    CUdeviceptr kept;
    CHECK(cuMemAlloc(&kept, 1 << 20));

    pid_t child = fork();
    if (child == 0) {
        /* Before cuInit the child has no session. */
        int count = 0;
        printf("child before cuInit: %s\n", xpu_result_name(cuDeviceGetCount(&count)));
        if (cuInit(0) != CUDA_SUCCESS) { printf("child: cuInit failed\n"); _exit(1); }
        _exit(use_device("child", 7));
    }
    int status = 0;
    waitpid(child, &status, 0);
    EXPECT_TRUE("child exited cleanly", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The parent's session and its memory survive the child. */
    EXPECT("parent frees memory allocated before the fork", cuMemFree(kept), CUDA_SUCCESS);
    if (use_device("parent", 9) != 0) xpu_failures++;
    CHECK(cuCtxDestroy(parent_ctx));
    return xpu_finish();
}
