/* The counter-based dither of _nsdkernel.c (nsd_ctr, ctr_uniform): σ, Δ and the levels of one δz in two reads.
 *
 * Uniforms. Element i of a call keyed (k0, k1) draws h = ctr_hash(i mod 2^32, k0, k1 ^ (⌊i / 2^32⌋·0x9E3779B9)) and
 * u = (2·(h >> 9) + 1)·2^-24: the odd multiples of 2^-24 in (0, 1), mean exactly ½, the grid of the SFC64 stream.
 * ctr_hash is two rounds of Wellons' "lowbias32" integer hash (xorshift-multiply, a bijection of 32-bit words) with
 * the key XORed in before each round (module doc of hwsim.capture.quant_counter: why this hash). Any element's u is a
 * pure function of (key, index): the numpy and torch paths compute the same words.
 *
 * σ. Σx and Σx² in float64 (x² of a float32 is exact in float64, neither over- nor underflows), element i added to
 * lane i mod 128 in index order, the lanes then added 0 + 1 + … + 127 left to right; mean = Σx/n, var = Σx²/n − mean²
 * (0 if negative), σ = √var, Δ = float32(s·σ), α = float32(1/Δ). The numpy path sums in the same lane order.
 *
 * Levels: k = ⌊float32(float32(x·α) + u)⌋ (two roundings, as every path computes them), δ̃z = float32(k·Δ).
 */
#ifndef HWSIM_NSDKERNEL_CTR_H
#define HWSIM_NSDKERNEL_CTR_H

#include "_nsdkernel_nsd.h"

#define CTR_M1 0x21f0aaadu
#define CTR_M2 0x735a2d97u
#define CTR_HI 0x9E3779B9u /* ⌊i / 2^32⌋ enters k1 multiplied by this (golden-ratio) odd constant */

INLINE uint32_t ctr_round(uint32_t x) {
    x ^= x >> 16;
    x *= CTR_M1;
    x ^= x >> 15;
    x *= CTR_M2;
    x ^= x >> 15;
    return x;
}

INLINE uint32_t ctr_hash(uint32_t i, uint32_t k0, uint32_t k1) {
    return ctr_round(ctr_round(i ^ k0) ^ k1);
}

/* u of m elements starting at ``start`` (a block never crosses a multiple of 2^32: BLOCK divides it) */
INLINE void ctr_uniforms(uint64_t start, int m, uint32_t k0, uint32_t k1, float *restrict u) {
    const uint32_t k1h = k1 ^ ((uint32_t)(start >> 32) * CTR_HI), lo = (uint32_t)start;
    for (int i = 0; i < m; i++)
        u[i] = (float)(int32_t)(((ctr_hash(lo + (uint32_t)i, k0, k1h) >> 9) << 1) | 1u) * U24;
}

/* Σx, Σx² in float64, lane i mod CTR_LANES (module doc); the lanes live in L1 and the loop vectorises across them */
#define CTR_LANES 128
#define DEFINE_CTR_SUMS(NAME, ATTR)                                                      \
    ATTR static void NAME(const float *x, Py_ssize_t n, double *s1, double *s2) {        \
        double a[CTR_LANES] = {0}, b[CTR_LANES] = {0};                                   \
        Py_ssize_t i = 0;                                                                \
        for (; i + CTR_LANES <= n; i += CTR_LANES)                                       \
            for (int j = 0; j < CTR_LANES; j++) {                                        \
                const double v = (double)x[i + j];                                       \
                a[j] += v;                                                               \
                b[j] += v * v;                                                           \
            }                                                                            \
        for (int j = 0; i < n; i++, j++) {                                               \
            const double v = (double)x[i];                                               \
            a[j] += v;                                                                   \
            b[j] += v * v;                                                               \
        }                                                                                \
        double p = 0.0, q = 0.0;                                                         \
        for (int j = 0; j < CTR_LANES; j++) {                                            \
            p += a[j];                                                                   \
            q += b[j];                                                                   \
        }                                                                                \
        *s1 = p;                                                                         \
        *s2 = q;                                                                         \
    }

DEFINE_CTR_SUMS(ctr_sums_base, )

static void nsd_ctr_run_base(const float *x, float *val, float *lev, Py_ssize_t n, uint32_t k0, uint32_t k1,
                             float alpha, float delta, nsd_acc *acc) {
    float u[BLOCK];
    for (Py_ssize_t off = 0; off < n; off += BLOCK) {
        const int m = (int)(n - off < BLOCK ? n - off : BLOCK);
        ctr_uniforms((uint64_t)off, m, k0, k1, u);
        nsd_block(x + off, val + off, lev != NULL ? lev + off : NULL, m, u, alpha, delta, 0, acc);
    }
}

#if HAVE_AVX2_CLONE
DEFINE_CTR_SUMS(ctr_sums_avx2, TARGET_AVX2)

TARGET_AVX2 static inline __attribute__((always_inline)) __m256i ctr_round8(__m256i x) {
    const __m256i m1 = _mm256_set1_epi32((int)CTR_M1), m2 = _mm256_set1_epi32((int)CTR_M2);
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
    x = _mm256_mullo_epi32(x, m1);
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
    x = _mm256_mullo_epi32(x, m2);
    return _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
}

/* One full block in AVX2: the uniforms hashed in the lanes (8 elements a step), then nsd_block's arithmetic
 * (two roundings), counts and sums, lane by lane. */
TARGET_AVX2 static inline __attribute__((always_inline)) void
nsd_ctr_block_avx2(const float *restrict x, float *restrict val, float *restrict lev, uint64_t start, uint32_t k0,
                   uint32_t k1, float alpha, float delta, nsd_acc *acc) {
    float kb[BLOCK];
    const __m256i onef = _mm256_set1_epi32((int)ONE_BITS), absm = _mm256_set1_epi32(0x7FFFFFFF);
    const __m256i two = _mm256_set1_epi32((int)(TWO_BITS - 1u)), eight = _mm256_set1_epi32(8);
    const __m256i vk0 = _mm256_set1_epi32((int)k0), vk1 = _mm256_set1_epi32((int)(k1 ^ ((uint32_t)(start >> 32) * CTR_HI)));
    const __m256 c24 = _mm256_set1_ps(1.0f - U24), va = _mm256_set1_ps(alpha), vd = _mm256_set1_ps(delta);
    __m256i idx = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)start), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i zeros = _mm256_setzero_si256(), ge2 = _mm256_setzero_si256(), mx = _mm256_setzero_si256();
    __m256 sx = _mm256_setzero_ps(), sk = _mm256_setzero_ps();
    float ub[BLOCK];
    for (int i = 0; i < BLOCK; i += 8) {  /* the block's uniforms first: independent hashes, no loop-carried chain */
        const __m256i h = ctr_round8(_mm256_xor_si256(ctr_round8(_mm256_xor_si256(idx, vk0)), vk1));
        idx = _mm256_add_epi32(idx, eight);
        /* 1.m − (1 − 2^-24) = (2·m + 1)·2^-24 exactly (m = h >> 9 under the exponent of 1.0f) */
        _mm256_storeu_ps(ub + i, _mm256_sub_ps(_mm256_castsi256_ps(_mm256_or_si256(_mm256_srli_epi32(h, 9), onef)), c24));
    }
    for (int i = 0; i < BLOCK; i += 8) {
        const __m256 u = _mm256_loadu_ps(ub + i);
        const __m256 xv = _mm256_loadu_ps(x + i);
        const __m256 k = _mm256_round_ps(_mm256_add_ps(_mm256_mul_ps(xv, va), u),
                                         _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        _mm256_storeu_ps(val + i, _mm256_mul_ps(k, vd));
        _mm256_storeu_ps(kb + i, k);
        const __m256i a = _mm256_and_si256(_mm256_castps_si256(k), absm);
        zeros = _mm256_sub_epi32(zeros, _mm256_cmpeq_epi32(a, _mm256_setzero_si256()));
        ge2 = _mm256_sub_epi32(ge2, _mm256_cmpgt_epi32(a, two));
        mx = _mm256_max_epu32(mx, a);
        sx = _mm256_fmadd_ps(xv, k, sx);
        sk = _mm256_fmadd_ps(k, k, sk);
    }
    block_finish_avx2(kb, lev, zeros, ge2, mx, sx, sk, acc);
}

TARGET_AVX2 static void nsd_ctr_run_avx2(const float *x, float *val, float *lev, Py_ssize_t n, uint32_t k0,
                                         uint32_t k1, float alpha, float delta, nsd_acc *acc) {
    const Py_ssize_t full = n / BLOCK, rest = n - full * BLOCK;
    for (Py_ssize_t b = 0; b < full; b++) {
        const Py_ssize_t off = b * BLOCK;
        nsd_ctr_block_avx2(x + off, val + off, lev != NULL ? lev + off : NULL, (uint64_t)off, k0, k1, alpha, delta,
                           acc);
    }
    if (rest > 0) {
        const Py_ssize_t off = full * BLOCK;
        float u[BLOCK];
        ctr_uniforms((uint64_t)off, (int)rest, k0, k1, u);
        nsd_block(x + off, val + off, lev != NULL ? lev + off : NULL, (int)rest, u, alpha, delta, 0, acc);
    }
}
#endif

#endif
