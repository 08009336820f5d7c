/* NSD loops of _nsdkernel.c (see its header): one block, the AVX2 block that draws the next block's words, the runs. */
#ifndef HWSIM_NSDKERNEL_NSD_H
#define HWSIM_NSDKERNEL_NSD_H

#include "_nsdkernel_common.h"

typedef struct {
    int64_t nnz, ge2;
    int64_t hist[NBINS];  /* levels with |k| >= 4, by bit-length index (entries 0 and 1 come from nnz, ge2) */
    uint32_t amax_bits;   /* max |k| as float bits (monotonic for non-negative floats) */
    double skk, sxk;
} nsd_acc;

/* ------------------------------------------------------------------------------------------------ NSD */

/* u of ``quant._uniform_np``'s raw route: 23 bits of a 32-bit half → (2·m + 1)·2^-24 */
INLINE void uniforms_raw(const uint32_t *restrict half, int m, float *restrict u) {
    for (int i = 0; i < m; i++)
        u[i] = (float)(int32_t)(((half[i] & 0x7FFFFFu) << 1) | 1u) * U24;
}

/* A block's level counts into ``acc``: non-zeros ``nz``, |k| >= 2 ``g2``, max |k| as float bits ``mb``, and the
   histogram of the levels with bit lengths >= 3 (from the float's exponent: exact for integers). */
INLINE void acc_counts(nsd_acc *acc, const float *restrict k, int m, int32_t nz, int32_t g2, uint32_t mb) {
    if (mb >= FOUR_BITS) {
        for (int i = 0; i < m; i++) {
            const uint32_t b = f2u(k[i]) & 0x7FFFFFFFu;
            if (b >= FOUR_BITS) {
                uint32_t e = (b >> 23) - 127u;
                acc->hist[e < NBINS - 1 ? e : NBINS - 1] += 1;
            }
        }
    }
    acc->nnz += nz;
    acc->ge2 += g2;
    if (mb > acc->amax_bits)
        acc->amax_bits = mb;
}

INLINE void nsd_block(const float *restrict x, float *restrict val, float *restrict lev, int m,
                      const float *restrict u, float alpha, float delta, int fused, nsd_acc *acc) {
    float k[BLOCK];
    if (fused) {
        for (int i = 0; i < m; i++)
            k[i] = floorf(fmaf(x[i], alpha, u[i]));
    } else {
        for (int i = 0; i < m; i++) {
            const float p = x[i] * alpha;
            k[i] = floorf(p + u[i]);
        }
    }
    for (int i = 0; i < m; i++)
        val[i] = k[i] * delta;
    if (lev != NULL)
        memcpy(lev, k, (size_t)m * sizeof(float));

    int32_t nz = 0, g2 = 0;
    uint32_t mb = 0;
    for (int i = 0; i < m; i++) {
        const uint32_t b = f2u(k[i]) & 0x7FFFFFFFu;
        nz += b != 0;
        g2 += b >= TWO_BITS;
        mb = b > mb ? b : mb;
    }
    float sx[8] = {0};
    int i = 0;
    for (; i + 8 <= m; i += 8)
        for (int j = 0; j < 8; j++)
            sx[j] += x[i + j] * k[i + j];
    double sxk = 0.0;
    for (; i < m; i++)
        sxk += (double)x[i] * (double)k[i];
    for (int j = 0; j < 8; j++)
        sxk += (double)sx[j];
    acc->sxk += sxk;

    if (mb <= ONE_BITS) {
        acc->skk += (double)nz;  /* every level in {-1, 0, 1} */
    } else if (mb < EXACT_SQ_BITS) {
        float sk[8] = {0};
        for (i = 0; i + 8 <= m; i += 8)
            for (int j = 0; j < 8; j++)
                sk[j] += k[i + j] * k[i + j];
        double skk = 0.0;
        for (; i < m; i++)
            skk += (double)k[i] * (double)k[i];
        for (int j = 0; j < 8; j++)
            skk += (double)sk[j];
        acc->skk += skk;
    } else {
        double skk = 0.0;
        for (i = 0; i < m; i++)
            skk += (double)k[i] * (double)k[i];
        acc->skk += skk;
    }
    acc_counts(acc, k, m, nz, g2, mb);
}

#define DEFINE_NSD_RUN(NAME, ATTR)                                                                        \
    ATTR static void NAME(const float *x, float *val, float *lev, Py_ssize_t n, uint64_t *state, float alpha, \
                          float delta, int fused, nsd_acc *acc) {                                         \
        sfc64 r = {state[0], state[1], state[2], state[3]};                                               \
        union {                                                                                           \
            uint64_t w[BLOCK / 2];                                                                        \
            uint32_t h[BLOCK];                                                                            \
        } bits;                                                                                           \
        float u[BLOCK];                                                                                   \
        for (Py_ssize_t off = 0; off < n; off += BLOCK) {                                                 \
            const int m = (int)(n - off < BLOCK ? n - off : BLOCK);                                       \
            const int words = (m + 1) / 2;                                                                \
            for (int j = 0; j < words; j++)                                                               \
                bits.w[j] = sfc64_next(&r);                                                               \
            uniforms_raw(bits.h, m, u);                                                                   \
            nsd_block(x + off, val + off, lev != NULL ? lev + off : NULL, m, u, alpha, delta, fused, acc); \
        }                                                                                                 \
        state[0] = r.a;                                                                                   \
        state[1] = r.b;                                                                                   \
        state[2] = r.c;                                                                                   \
        state[3] = r.w;                                                                                   \
    }

DEFINE_NSD_RUN(nsd_run_base, )

#if HAVE_AVX2_CLONE
/* The end of one full AVX2 block, shared by both dithers: the levels written when asked, the lanes' counts (zeros,
 * |k| >= 2, max |k| bits), Σδz·k and Σk² reduced (Σk² by the count of non-zeros when |k| <= 1, exact in float32
 * below EXACT_SQ_BITS, else summed again in float64), then the bit-width histogram (acc_counts). */
TARGET_AVX2 static inline __attribute__((always_inline)) void
block_finish_avx2(const float *restrict kb, float *restrict lev, __m256i zeros, __m256i ge2, __m256i mx, __m256 sx,
                  __m256 sk, nsd_acc *acc) {
    if (lev != NULL)
        memcpy(lev, kb, BLOCK * sizeof *kb);
    int32_t zl[8], gl[8];
    uint32_t ml[8];
    float sxl[8], skl[8];
    _mm256_storeu_si256((__m256i *)zl, zeros);
    _mm256_storeu_si256((__m256i *)gl, ge2);
    _mm256_storeu_si256((__m256i *)ml, mx);
    _mm256_storeu_ps(sxl, sx);
    _mm256_storeu_ps(skl, sk);
    int32_t nz = BLOCK, g2 = 0;
    uint32_t mb = 0;
    double sxk = 0.0, skk = 0.0;
    for (int l = 0; l < 8; l++) {
        nz -= zl[l];
        g2 += gl[l];
        mb = ml[l] > mb ? ml[l] : mb;
        sxk += (double)sxl[l];
        skk += (double)skl[l];
    }
    acc->sxk += sxk;
    if (mb <= ONE_BITS)
        acc->skk += (double)nz;
    else if (mb < EXACT_SQ_BITS)
        acc->skk += skk;  /* 64 squares < 2^18 a lane: exact in float32 */
    else {
        skk = 0.0;
        for (int i = 0; i < BLOCK; i++)
            skk += (double)kb[i] * (double)kb[i];
        acc->skk += skk;
    }
    acc_counts(acc, kb, BLOCK, nz, g2, mb);
}
#endif

#if HAVE_AVX2_CLONE
/* One full block in AVX2 with the next block's SFC64 words drawn in the same loop (``gen`` of them, into ``nxt``):
 * the generator's serial chain (~3 cycles a word) then overlaps the vector work instead of preceding it. The
 * arithmetic is nsd_block's, lane by lane: the same u, one or two roundings, floor, k·Δ. */
TARGET_AVX2 static inline __attribute__((always_inline)) void
nsd_block_avx2(const float *restrict x, float *restrict val, float *restrict lev, const uint32_t *restrict half,
               uint64_t *restrict nxt, int gen, sfc64 *r, float alpha, float delta, int fused, nsd_acc *acc) {
    float kb[BLOCK];
    const __m256i mant = _mm256_set1_epi32(0x7FFFFF), one = _mm256_set1_epi32(1);
    const __m256i absm = _mm256_set1_epi32(0x7FFFFFFF), two = _mm256_set1_epi32((int)(TWO_BITS - 1u));
    const __m256 scale = _mm256_set1_ps(U24), va = _mm256_set1_ps(alpha), vd = _mm256_set1_ps(delta);
    __m256i zeros = _mm256_setzero_si256(), ge2 = _mm256_setzero_si256(), mx = _mm256_setzero_si256();
    __m256 sx = _mm256_setzero_ps(), sk = _mm256_setzero_ps();
    int j = 0;
    for (int i = 0; i < BLOCK; i += 8) {
        if (j + 4 <= gen) {
            nxt[j] = sfc64_next(r);
            nxt[j + 1] = sfc64_next(r);
            nxt[j + 2] = sfc64_next(r);
            nxt[j + 3] = sfc64_next(r);
            j += 4;
        }
        const __m256i h = _mm256_loadu_si256((const __m256i *)(half + i));
        const __m256i m2 = _mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(h, mant), 1), one);
        const __m256 u = _mm256_mul_ps(_mm256_cvtepi32_ps(m2), scale);
        const __m256 xv = _mm256_loadu_ps(x + i);
        const __m256 t = fused ? _mm256_fmadd_ps(xv, va, u) : _mm256_add_ps(_mm256_mul_ps(xv, va), u);
        const __m256 k = _mm256_round_ps(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        _mm256_storeu_ps(val + i, _mm256_mul_ps(k, vd));
        _mm256_storeu_ps(kb + i, k);
        const __m256i a = _mm256_and_si256(_mm256_castps_si256(k), absm);
        zeros = _mm256_sub_epi32(zeros, _mm256_cmpeq_epi32(a, _mm256_setzero_si256()));
        ge2 = _mm256_sub_epi32(ge2, _mm256_cmpgt_epi32(a, two));
        mx = _mm256_max_epu32(mx, a);
        sx = _mm256_fmadd_ps(xv, k, sx);
        sk = _mm256_fmadd_ps(k, k, sk);
    }
    for (; j < gen; j++)
        nxt[j] = sfc64_next(r);
    block_finish_avx2(kb, lev, zeros, ge2, mx, sx, sk, acc);
}

TARGET_AVX2 static void nsd_run_avx2(const float *x, float *val, float *lev, Py_ssize_t n, uint64_t *state,
                                     float alpha, float delta, int fused, nsd_acc *acc) {
    sfc64 r = {state[0], state[1], state[2], state[3]};
    union {
        uint64_t w[BLOCK / 2];
        uint32_t h[BLOCK];
    } bits[2];
    const Py_ssize_t full = n / BLOCK, rest = n - full * BLOCK;
    if (full > 0)
        for (int j = 0; j < BLOCK / 2; j++)
            bits[0].w[j] = sfc64_next(&r);
    for (Py_ssize_t b = 0; b < full; b++) {  /* block b's words were drawn before it; it draws block b + 1's */
        const int gen = b + 1 < full ? BLOCK / 2 : (int)(rest + 1) / 2;
        const Py_ssize_t off = b * BLOCK;
        nsd_block_avx2(x + off, val + off, lev != NULL ? lev + off : NULL, bits[b & 1].h, bits[(b + 1) & 1].w, gen,
                       &r, alpha, delta, fused, acc);
    }
    if (rest > 0) {
        if (full == 0)
            for (int j = 0; j < (int)(rest + 1) / 2; j++)
                bits[0].w[j] = sfc64_next(&r);
        const Py_ssize_t off = full * BLOCK;
        float u[BLOCK];
        uniforms_raw(bits[full & 1].h, (int)rest, u);
        nsd_block(x + off, val + off, lev != NULL ? lev + off : NULL, (int)rest, u, alpha, delta, fused, acc);
    }
    state[0] = r.a;
    state[1] = r.b;
    state[2] = r.c;
    state[3] = r.w;
}
#endif

/* Small tensors: numpy's ``Generator.random(n, dtype=float32)`` uniforms, u = (next 32 bits >> 8)·2^-24, where
 * the 32-bit draws are the low then the high half of each 64-bit output (the high half kept in the generator's
 * has_uint32 / uinteger buffer between calls); the levels are rounded twice (numpy's multiply, then add). */
INLINE uint32_t sfc64_next32(sfc64 *r, int *has, uint32_t *buf) {
    if (*has) {
        *has = 0;
        return *buf;
    }
    const uint64_t v = sfc64_next(r);
    *has = 1;
    *buf = (uint32_t)(v >> 32);
    return (uint32_t)v;
}

static void nsd_small_run(const float *x, float *val, float *lev, Py_ssize_t n, uint64_t *state, int *has,
                          uint32_t *buf, float alpha, float delta, nsd_acc *acc) {
    sfc64 r = {state[0], state[1], state[2], state[3]};
    float u[BLOCK];
    for (Py_ssize_t off = 0; off < n; off += BLOCK) {
        const int m = (int)(n - off < BLOCK ? n - off : BLOCK);
        for (int i = 0; i < m; i++)
            u[i] = (float)(sfc64_next32(&r, has, buf) >> 8) * U24;
        nsd_block(x + off, val + off, lev != NULL ? lev + off : NULL, m, u, alpha, delta, 0, acc);
    }
    state[0] = r.a;
    state[1] = r.b;
    state[2] = r.c;
    state[3] = r.w;
}

#endif
