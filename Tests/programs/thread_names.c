/* For the thread-name test: one launch and a synchronize (so the shim has started its flusher and
 * the device its stream worker), then one line per thread of this process ("thread NAME"), then
 * "ready", then it holds its session until killed, so that the test can read the server's threads
 * meanwhile. */
#include "xpu_test.h"

#include <dirent.h>
#include <string.h>
#include <unistd.h>

static const char *ptx =
    ".version 7.0\n.target sm_70\n.address_size 64\n"
    ".visible .entry none() { ret; }\n";

int main(void) {
    CUcontext ctx;
    xpu_setup_primary(&ctx);
    CUmodule module;
    CUfunction function;
    CHECK(cuModuleLoadData(&module, ptx));
    CHECK(cuModuleGetFunction(&function, module, "none"));
    CHECK(cuLaunchKernel(function, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL));
    CHECK(cuCtxSynchronize());

    DIR *tasks = opendir("/proc/self/task");
    if (tasks == NULL) return 1;
    struct dirent *task;
    while ((task = readdir(tasks)) != NULL) {
        if (task->d_name[0] == '.') continue;
        char path[64], name[32] = {0};
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", task->d_name);
        FILE *comm = fopen(path, "r");
        if (comm == NULL) continue;
        if (fgets(name, sizeof name, comm) != NULL) printf("thread %s", name);
        fclose(comm);
    }
    closedir(tasks);
    printf("ready\n");
    fflush(stdout);

    for (;;) pause();
}
