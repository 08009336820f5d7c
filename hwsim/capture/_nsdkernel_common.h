/* Shared by the loops of _nsdkernel.c: constants, the instruction-set switch and numpy's SFC64 generator. */
#ifndef HWSIM_NSDKERNEL_COMMON_H
#define HWSIM_NSDKERNEL_COMMON_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(_MSC_VER)
#define restrict __restrict
#endif

#define U24 (1.0f / 16777216.0f)  /* 2^-24 */
#define BLOCK 512   /* elements per block: its uniforms and levels stay in the L1 cache */
#define NBINS 15    /* LevelStats.hist entries for max_bits = 16 */
#define ONE_BITS 0x3F800000u   /* 1.0f */
#define TWO_BITS 0x40000000u   /* 2.0f */
#define FOUR_BITS 0x40800000u  /* 4.0f */
#define EXACT_SQ_BITS 0x44000000u  /* 512.0f: below it a block's float Σk² is exact (64 terms < 2^18 a lane) */

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_AVX2_CLONE 1
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#include <immintrin.h>
#else
#define HAVE_AVX2_CLONE 0
#endif

#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
#else
#define INLINE static __forceinline
#endif

/* ------------------------------------------------------------------------------------------------ SFC64 */

typedef struct {
    uint64_t a, b, c, w;
} sfc64;

INLINE uint64_t sfc64_next(sfc64 *r) {
    const uint64_t out = r->a + r->b + r->w;
    r->w += 1;
    r->a = r->b ^ (r->b >> 11);
    r->b = r->c + (r->c << 3);
    r->c = ((r->c << 24) | (r->c >> 40)) + out;
    return out;
}

INLINE uint32_t f2u(float f) {
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

INLINE float u2f(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

#endif
