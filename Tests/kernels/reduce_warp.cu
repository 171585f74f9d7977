// Sum of n integers: a grid-stride loop per thread, a warp-shuffle tree per warp, one shared slot
// per warp, a second shuffle round in warp 0, then one atomicAdd per block into *result.
// Also counts the positive inputs with __ballot_sync/__popc and a vote (__all_sync) flag.
extern "C" __global__ void reduce_warp(const int *in, int n, unsigned long long *result, unsigned *positives,
                                       int *allSmall) {
    __shared__ int warpSums[32];
    int sum = 0;
    unsigned count = 0;
    bool small = true;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
        int v = in[i];
        sum += v;
        unsigned ballot = __ballot_sync(__activemask(), v > 0);
        if ((threadIdx.x & 31) == __ffs(__activemask()) - 1) count += __popc(ballot);
        small = small && (v < 1000);
    }
    for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, offset);
    if (!__all_sync(0xffffffffu, small) && (threadIdx.x & 31) == 0) atomicExch(allSmall, 0);
    int lane = threadIdx.x & 31;
    int warp = threadIdx.x >> 5;
    if (lane == 0) warpSums[warp] = sum;
    __syncthreads();
    if (warp == 0) {
        int nwarps = (blockDim.x + 31) >> 5;
        sum = lane < nwarps ? warpSums[lane] : 0;
        for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
        if (lane == 0) atomicAdd(result, (unsigned long long)(long long)sum);
    }
    if (count) atomicAdd(positives, count);
}
