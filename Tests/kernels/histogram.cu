// 256-bin histogram of bytes: per-block bins in shared memory (shared atomics), merged into the
// global histogram with one global atomicAdd per non-empty bin. Also tracks the global max byte.
extern "C" __global__ void histogram(const unsigned char *data, int n, unsigned *bins, unsigned *maxByte) {
    __shared__ unsigned local[256];
    for (int b = threadIdx.x; b < 256; b += blockDim.x) local[b] = 0;
    __syncthreads();
    unsigned best = 0;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
        unsigned char v = data[i];
        atomicAdd(&local[v], 1u);
        best = max(best, (unsigned)v);
    }
    atomicMax(maxByte, best);
    __syncthreads();
    for (int b = threadIdx.x; b < 256; b += blockDim.x)
        if (local[b]) atomicAdd(&bins[b], local[b]);
}
