// Device-function calls that stay calls in PTX (noinline gives `.func` + `call`), with a local
// array indexed at run time (so it lives in local memory) and a function returning a struct.
struct Stats { int lo; int hi; long long sum; };

__device__ __noinline__ int collatz_steps(unsigned x) {
    int steps = 0;
    while (x != 1 && steps < 1000) { x = (x & 1) ? 3 * x + 1 : x / 2; ++steps; }
    return steps;
}

__device__ __noinline__ Stats stats_of(const int *v, int count) {
    Stats s = {v[0], v[0], 0};
    for (int i = 0; i < count; ++i) { s.lo = min(s.lo, v[i]); s.hi = max(s.hi, v[i]); s.sum += v[i]; }
    return s;
}

__device__ __noinline__ float poly(float x, float a, float b, float c) { return (a * x + b) * x + c; }

extern "C" __global__ void device_calls(const unsigned *in, int n, int *steps, long long *summary, float *values,
                                        int pick) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int window[8];
    for (int k = 0; k < 8; ++k) window[k] = collatz_steps(in[i] + k);
    steps[i] = window[pick & 7];
    Stats s = stats_of(window, 8);
    summary[3 * i] = s.lo;
    summary[3 * i + 1] = s.hi;
    summary[3 * i + 2] = s.sum;
    values[i] = poly((float)in[i] * 0.001f, 0.5f, -2.0f, 1.25f);
}
