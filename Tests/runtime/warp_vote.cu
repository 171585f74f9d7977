// Warp-wide votes and shuffles: ballot, any, all, broadcast.
#include "check.h"

__global__ void vote(const int *in, unsigned *ballots, int *flags, int *broadcast) {
    int v = in[blockIdx.x * 32 + threadIdx.x];
    unsigned ballot = __ballot_sync(0xffffffff, v > 0);
    int any = __any_sync(0xffffffff, v > 100);
    int all = __all_sync(0xffffffff, v >= 0);
    int first = __shfl_sync(0xffffffff, v, 5);
    if (threadIdx.x == 0) {
        ballots[blockIdx.x] = ballot;
        flags[2 * blockIdx.x] = any;
        flags[2 * blockIdx.x + 1] = all;
        broadcast[blockIdx.x] = first;
    }
}

int main() {
    const int warps = 4;
    int in[warps * 32];
    for (int i = 0; i < warps * 32; i++) in[i] = (i * 7) % 5 == 0 ? 0 : (i % 3) * (i / 32 == 2 ? 60 : 1) - (i / 32 == 3 ? 1 : 0);
    int *din, *dflags, *dbroadcast;
    unsigned *dballots;
    CHECK(cudaMalloc(&din, sizeof in));
    CHECK(cudaMalloc(&dballots, warps * sizeof(unsigned)));
    CHECK(cudaMalloc(&dflags, 2 * warps * sizeof(int)));
    CHECK(cudaMalloc(&dbroadcast, warps * sizeof(int)));
    CHECK(cudaMemcpy(din, in, sizeof in, cudaMemcpyHostToDevice));
    vote<<<warps, 32>>>(din, dballots, dflags, dbroadcast);
    CHECK(cudaGetLastError());
    unsigned ballots[warps];
    int flags[2 * warps], broadcast[warps];
    CHECK(cudaMemcpy(ballots, dballots, sizeof ballots, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(flags, dflags, sizeof flags, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(broadcast, dbroadcast, sizeof broadcast, cudaMemcpyDeviceToHost));
    int wrong = 0;
    for (int w = 0; w < warps; w++) {
        unsigned ballot = 0;
        int any = 0, all = 1;
        for (int l = 0; l < 32; l++) {
            int v = in[w * 32 + l];
            ballot |= (unsigned)(v > 0) << l;
            any |= v > 100;
            all &= v >= 0;
        }
        wrong += ballots[w] != ballot || flags[2 * w] != any || flags[2 * w + 1] != all || broadcast[w] != in[w * 32 + 5];
        printf("warp %d: ballot %08x any %d all %d lane5 %d\n", w, ballots[w], flags[2 * w], flags[2 * w + 1], broadcast[w]);
    }
    printf(wrong == 0 ? "PASS\n" : "FAIL\n");
    return wrong == 0 ? 0 : 1;
}
