// Half- and bfloat16-precision arithmetic. The wheel's nvcc ships without the CCCL headers that
// cuda_fp16.h needs, so the conversions and __half operations are written here the way
// cuda_fp16.hpp writes them: inline PTX on 16-bit registers.
//   y[i]         = half(half(x[i]) * half(scale) + b[i])        (add.f16 / mul.f16 / fma.rn.f16)
//   roundTrip[i] = float(bf16(float(x[i]) * 3)) + float(y[i])   (bf16 via cvt on sm_80+, bits on sm_75)
typedef unsigned short half_bits;

__device__ __forceinline__ half_bits float_to_half(float f) {
    half_bits h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
__device__ __forceinline__ float half_to_float(half_bits h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ half_bits half_mul(half_bits a, half_bits b) {
    half_bits r;
    asm("mul.f16 %0, %1, %2;" : "=h"(r) : "h"(a), "h"(b));
    return r;
}
__device__ __forceinline__ half_bits half_add(half_bits a, half_bits b) {
    half_bits r;
    asm("add.f16 %0, %1, %2;" : "=h"(r) : "h"(a), "h"(b));
    return r;
}
__device__ __forceinline__ half_bits half_fma(half_bits a, half_bits b, half_bits c) {
    half_bits r;
    asm("fma.rn.f16 %0, %1, %2, %3;" : "=h"(r) : "h"(a), "h"(b), "h"(c));
    return r;
}
__device__ __forceinline__ unsigned short float_to_bf16(float f) {
#if __CUDA_ARCH__ >= 800
    unsigned short r;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r) : "f"(f));
    return r;
#else
    unsigned u = __float_as_uint(f);  // round to nearest even on the dropped 16 bits (finite inputs)
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
#endif
}
__device__ __forceinline__ float bf16_to_float(unsigned short b) {
#if __CUDA_ARCH__ >= 900
    float f;
    asm("cvt.f32.bf16 %0, %1;" : "=f"(f) : "h"(b));
    return f;
#else
    return __uint_as_float(((unsigned)b) << 16);
#endif
}

extern "C" __global__ void half_precision(const half_bits *x, const half_bits *b, half_bits *y, float *roundTrip,
                                          float scale, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    half_bits s = float_to_half(scale);
    half_bits product = half_mul(x[i], s);
    half_bits h = (i & 1) ? half_fma(x[i], s, b[i]) : half_add(product, b[i]);
    y[i] = h;
    unsigned short bf = float_to_bf16(half_to_float(x[i]) * 3.0f);
    roundTrip[i] = bf16_to_float(bf) + half_to_float(h);
}
