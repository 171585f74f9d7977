// Shared by the runtime programs: stop at the first failed runtime call, naming it.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>

#define CHECK(call)                                                                                 \
    do {                                                                                            \
        cudaError_t status_ = (call);                                                               \
        if (status_ != cudaSuccess) {                                                               \
            printf("%s:%d: %s failed: %s (%s)\n", __FILE__, __LINE__, #call, cudaGetErrorName(status_), \
                   cudaGetErrorString(status_));                                                    \
            exit(1);                                                                                \
        }                                                                                           \
    } while (0)
