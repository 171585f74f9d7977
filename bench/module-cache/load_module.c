/* Loads one module image (a file: fatbinary, PTX or cubin) and prints how long cuModuleLoadData took. */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
        return 2;
    }
    FILE *file = fopen(argv[1], "rb");
    if (!file) return perror(argv[1]), 2;
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    rewind(file);
    char *image = calloc(1, (size_t)size + 1);
    if (fread(image, 1, (size_t)size, file) != (size_t)size) return fprintf(stderr, "short read\n"), 2;
    fclose(file);
    CUdevice device;
    CUcontext context;
    CUmodule module;
    if (cuInit(0) || cuDeviceGet(&device, 0) || cuDevicePrimaryCtxRetain(&context, device) || cuCtxSetCurrent(context)) {
        fprintf(stderr, "no device\n");
        return 1;
    }
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    CUresult result = cuModuleLoadData(&module, image);
    clock_gettime(CLOCK_MONOTONIC, &end);
    if (result != CUDA_SUCCESS) {
        fprintf(stderr, "cuModuleLoadData: %d\n", result);
        return 1;
    }
    printf("image_bytes=%ld load_ms=%.3f\n", size, (end.tv_sec - start.tv_sec) * 1e3 + (end.tv_nsec - start.tv_nsec) / 1e6);
    return 0;
}
