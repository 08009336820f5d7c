/* Compiled single-pass quantizers of δz for hwsim.capture.quant_compiled (optional; numpy is the fallback).
 *
 * nsd(x, state, alpha, delta, fused, values, levels)
 *     One pass over a float32 δz after its std is known (Δ = s·σ, alpha = 1/Δ): the dither u, the level
 *     k = ⌊x·alpha + u⌋, the value δ̃z = k·Δ written once, the levels written only when ``levels`` is not None,
 *     and the level statistics and noise sums of the call. The uniforms are numpy's: SFC64 (Chris Doty-Humphrey's
 *     Small Fast Chaotic generator, 64-bit variant: state a, b, c and a counter w, in numpy's state order
 *     [a, b, c, w]) advanced from ``state`` (a writable buffer of 4 uint64, written back), one 64-bit output per
 *     two elements split into its two 32-bit halves in memory order (numpy's ``random_raw(...).view(float32)``);
 *     23 bits of each half give u = (2·m + 1)·2^-24, the value of ``hwsim.capture.quant._uniform_np``'s float
 *     construction (1.m − (1 − 2^-24), exact). ``fused``: x·alpha + u rounded once (torch's vectorised
 *     ``add_(x, alpha=…)`` uses an FMA) or twice (numpy's multiply then add); the caller measures which.
 *     Returns (nnz, max|k|, hist, Σk², Σx·k): hist[b] counts the non-zero levels of bit length b + 1 (the last
 *     entry also the longer ones), as ``LevelStats.hist`` of max_bits 16.
 *
 * nsd_small(x, state, has_uint32, uinteger, alpha, delta, values, levels)
 *     The same for tensors below ``quant._RAW_MIN`` elements, whose numpy path draws ``Generator.random(n,
 *     dtype=float32)``: u = (32 random bits >> 8)·2^-24, the 32-bit draws taking the low then the high half of each
 *     64-bit output, a left-over half kept in numpy's has_uint32 / uinteger (passed in, returned after nsd's
 *     five values); x·alpha + u rounded twice.
 *
 * view_stats(x)
 *     The statistics of the int8 view of a float32 δz (``quant.counted_view``): Δ = max|x|/127, |level| =
 *     max(1, rint(|x|/float32(Δ))) for x ≠ 0. Returns (max|x|, nnz, max|level|, hist), or None when x holds
 *     NaN/Inf or Δ is not a normal float32 (the caller falls back to the torch view).
 *
 * muladd(x, u, alpha, fused, out)
 *     out = x·alpha + u rounded once (fused) or twice: the caller's probe of torch's arithmetic.
 *
 * All buffers are C-contiguous float32 (the caller checks dtypes and lengths); the loops run without the GIL.
 * Built with -ffp-contract=off so that "rounded twice" stays so; on x86-64 a copy of each loop is compiled for
 * AVX2 + FMA and chosen at run time (the other copy calls the C library's fmaf: the same results, slower).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

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

typedef struct {
    int64_t nnz, ge2;
    int64_t hist[NBINS];  /* levels with |k| >= 4, by bit-length index (entries 0 and 1 come from nnz, ge2) */
    uint32_t amax_bits;   /* max |k| as float bits (monotonic for non-negative floats) */
    double skk, sxk;
} nsd_acc;

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

/* ------------------------------------------------------------------------------------------------ NSD */

/* u of ``quant._uniform_np``'s raw route: 23 bits of a 32-bit half → (2·m + 1)·2^-24 */
INLINE void uniforms_raw(const uint32_t *restrict half, int m, float *restrict u) {
    for (int i = 0; i < m; i++)
        u[i] = (float)(int32_t)(((half[i] & 0x7FFFFFu) << 1) | 1u) * U24;
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
    if (mb >= FOUR_BITS) {  /* bit lengths >= 3: from the float's exponent (exact for integers) */
        for (i = 0; i < m; i++) {
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
    if (lev != NULL)
        memcpy(lev, kb, sizeof kb);
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
    if (mb >= FOUR_BITS) {
        for (int i = 0; i < BLOCK; i++) {
            const uint32_t b = f2u(kb[i]) & 0x7FFFFFFFu;
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

/* ------------------------------------------------------------------------------------------------ int8 view */

typedef struct {
    int64_t nnz, ge[8];  /* ge[b] = #rint(|x|/Δ) >= 2^b, b = 1..7 (ge[0] unused) */
    uint32_t qmax_bits;  /* max rint(|x|/Δ) as float bits */
} view_acc;

INLINE void view_pass1(const float *restrict x, Py_ssize_t n, uint32_t *maxbits, int64_t *nnz) {
    uint32_t mb = 0;
    int64_t nz = 0;
    for (Py_ssize_t off = 0; off < n; off += BLOCK) {
        const int m = (int)(n - off < BLOCK ? n - off : BLOCK);
        int32_t z = 0;
        for (int i = 0; i < m; i++) {
            const uint32_t b = f2u(x[off + i]) & 0x7FFFFFFFu;
            z += b != 0;
            mb = b > mb ? b : mb;
        }
        nz += z;
    }
    *maxbits = mb;
    *nnz = nz;
}

INLINE void view_pass2(const float *restrict x, Py_ssize_t n, float df, view_acc *acc) {
    uint32_t qm = 0;
    float q[BLOCK];
    for (Py_ssize_t off = 0; off < n; off += BLOCK) {
        const int m = (int)(n - off < BLOCK ? n - off : BLOCK);
        for (int i = 0; i < m; i++)
            q[i] = rintf(fabsf(x[off + i]) / df);
        int32_t c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0, c6 = 0, c7 = 0;
        for (int i = 0; i < m; i++) {  /* counts on the float bits (monotonic for q >= 0) */
            const uint32_t b = f2u(q[i]);
            c1 += b >= 0x40000000u;  /* 2 */
            c2 += b >= 0x40800000u;  /* 4 */
            c3 += b >= 0x41000000u;  /* 8 */
            c4 += b >= 0x41800000u;  /* 16 */
            c5 += b >= 0x42000000u;  /* 32 */
            c6 += b >= 0x42800000u;  /* 64 */
            c7 += b >= 0x43000000u;  /* 128 */
            qm = b > qm ? b : qm;
        }
        acc->ge[1] += c1;
        acc->ge[2] += c2;
        acc->ge[3] += c3;
        acc->ge[4] += c4;
        acc->ge[5] += c5;
        acc->ge[6] += c6;
        acc->ge[7] += c7;
    }
    acc->qmax_bits = qm;
}

#define DEFINE_VIEW_RUN(NAME, ATTR)                                                               \
    ATTR static int NAME(const float *x, Py_ssize_t n, float *mx, view_acc *acc) {                \
        uint32_t mb;                                                                              \
        view_pass1(x, n, &mb, &acc->nnz);                                                         \
        if (mb >= 0x7F800000u)                                                                    \
            return 0; /* NaN or Inf */                                                            \
        *mx = u2f(mb);                                                                            \
        const double delta = (double)*mx / 127.0;                                                 \
        if (!(delta >= (double)FLT_MIN))                                                          \
            return 0;                                                                             \
        view_pass2(x, n, (float)delta, acc);                                                      \
        return 1;                                                                                 \
    }

DEFINE_VIEW_RUN(view_run_base, )
#if HAVE_AVX2_CLONE
DEFINE_VIEW_RUN(view_run_avx2, TARGET_AVX2)
#endif

/* ------------------------------------------------------------------------------------------------ probe */

#define DEFINE_MULADD(NAME, ATTR)                                                                     \
    ATTR static void NAME(const float *x, const float *u, float alpha, int fused, float *out, Py_ssize_t n) { \
        if (fused)                                                                                    \
            for (Py_ssize_t i = 0; i < n; i++)                                                        \
                out[i] = fmaf(x[i], alpha, u[i]);                                                     \
        else                                                                                          \
            for (Py_ssize_t i = 0; i < n; i++) {                                                      \
                const float p = x[i] * alpha;                                                         \
                out[i] = p + u[i];                                                                    \
            }                                                                                         \
    }

DEFINE_MULADD(muladd_base, )
#if HAVE_AVX2_CLONE
DEFINE_MULADD(muladd_avx2, TARGET_AVX2)
#endif

/* ------------------------------------------------------------------------------------------------ Python */

static int use_avx2 = 0;

static int float_buffer(Py_buffer *b, Py_ssize_t n, const char *what) {
    if (b->len != n * (Py_ssize_t)sizeof(float)) {
        PyErr_Format(PyExc_ValueError, "_nsdkernel: %s holds %zd bytes, expected %zd float32 values", what, b->len, n);
        return 0;
    }
    return 1;
}

static PyObject *nsd_common(PyObject *args, int small) {
    Py_buffer x, st, val, lev = {0};
    double alpha, delta;
    int fused = 0, has = 0;
    unsigned int ubuf = 0;
    PyObject *levels;
    if (small) {
        if (!PyArg_ParseTuple(args, "y*w*pIddw*O", &x, &st, &has, &ubuf, &alpha, &delta, &val, &levels))
            return NULL;
    } else if (!PyArg_ParseTuple(args, "y*w*ddpw*O", &x, &st, &alpha, &delta, &fused, &val, &levels))
        return NULL;
    uint32_t buf = (uint32_t)ubuf;
    PyObject *ret = NULL;
    const Py_ssize_t n = x.len / (Py_ssize_t)sizeof(float);
    int have_lev = 0;
    if (st.len != 4 * (Py_ssize_t)sizeof(uint64_t)) {
        PyErr_SetString(PyExc_ValueError, "_nsdkernel: state must be 4 uint64 (numpy SFC64's state['state'])");
        goto done;
    }
    if (!float_buffer(&val, n, "values"))
        goto done;
    if (levels != Py_None) {
        if (PyObject_GetBuffer(levels, &lev, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
            goto done;
        have_lev = 1;
        if (!float_buffer(&lev, n, "levels"))
            goto done;
    }
    nsd_acc acc;
    memset(&acc, 0, sizeof acc);
    Py_BEGIN_ALLOW_THREADS
    if (small)
        nsd_small_run((const float *)x.buf, (float *)val.buf, have_lev ? (float *)lev.buf : NULL, n,
                      (uint64_t *)st.buf, &has, &buf, (float)alpha, (float)delta, &acc);
    else
#if HAVE_AVX2_CLONE
    if (use_avx2)
        nsd_run_avx2((const float *)x.buf, (float *)val.buf, have_lev ? (float *)lev.buf : NULL, n,
                     (uint64_t *)st.buf, (float)alpha, (float)delta, fused, &acc);
    else
#endif
        nsd_run_base((const float *)x.buf, (float *)val.buf, have_lev ? (float *)lev.buf : NULL, n,
                     (uint64_t *)st.buf, (float)alpha, (float)delta, fused, &acc);
    Py_END_ALLOW_THREADS
    PyObject *hist = PyTuple_New(NBINS);
    if (hist == NULL)
        goto done;
    for (int b = 0; b < NBINS; b++) {
        int64_t c = acc.hist[b];
        if (b == 0)
            c = acc.nnz - acc.ge2;
        else if (b == 1) {
            int64_t ge4 = 0;
            for (int j = 2; j < NBINS; j++)
                ge4 += acc.hist[j];
            c = acc.ge2 - ge4;
        }
        PyTuple_SET_ITEM(hist, b, PyLong_FromLongLong(c));
    }
    if (small)
        ret = Py_BuildValue("(LdNddiI)", (long long)acc.nnz, (double)u2f(acc.amax_bits), hist, acc.skk, acc.sxk, has,
                            (unsigned int)buf);
    else
        ret = Py_BuildValue("(LdNdd)", (long long)acc.nnz, (double)u2f(acc.amax_bits), hist, acc.skk, acc.sxk);
done:
    PyBuffer_Release(&x);
    PyBuffer_Release(&st);
    PyBuffer_Release(&val);
    if (have_lev)
        PyBuffer_Release(&lev);
    return ret;
}

static PyObject *py_nsd(PyObject *self, PyObject *args) {
    (void)self;
    return nsd_common(args, 0);
}

static PyObject *py_nsd_small(PyObject *self, PyObject *args) {
    (void)self;
    return nsd_common(args, 1);
}

static PyObject *py_view_stats(PyObject *self, PyObject *args) {
    Py_buffer x;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*", &x))
        return NULL;
    const Py_ssize_t n = x.len / (Py_ssize_t)sizeof(float);
    view_acc acc;
    memset(&acc, 0, sizeof acc);
    float mx = 0.0f;
    int ok;
    Py_BEGIN_ALLOW_THREADS
#if HAVE_AVX2_CLONE
    if (use_avx2)
        ok = view_run_avx2((const float *)x.buf, n, &mx, &acc);
    else
#endif
        ok = view_run_base((const float *)x.buf, n, &mx, &acc);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&x);
    if (!ok || n == 0)
        Py_RETURN_NONE;
    /* |level| = max(1, q) for x != 0: ge[0] = nnz, ge[1] = #q >= 2, ...; hist[b] = ge[b] - ge[b + 1] */
    int64_t ge[9];
    ge[0] = acc.nnz;
    for (int b = 1; b < 8; b++)
        ge[b] = acc.ge[b];
    ge[8] = 0;
    const long long top = acc.ge[1] > 0 ? (long long)u2f(acc.qmax_bits) : (long long)(acc.nnz > 0);
    PyObject *hist = PyTuple_New(NBINS);
    if (hist == NULL)
        return NULL;
    for (int b = 0; b < NBINS; b++)
        PyTuple_SET_ITEM(hist, b, PyLong_FromLongLong(b < 8 ? ge[b] - ge[b + 1] : 0));
    return Py_BuildValue("(dLLN)", (double)mx, (long long)acc.nnz, top, hist);
}

static PyObject *py_muladd(PyObject *self, PyObject *args) {
    Py_buffer x, u, out;
    double alpha;
    int fused;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*dpw*", &x, &u, &alpha, &fused, &out))
        return NULL;
    const Py_ssize_t n = x.len / (Py_ssize_t)sizeof(float);
    PyObject *ret = NULL;
    if (float_buffer(&u, n, "u") && float_buffer(&out, n, "out")) {
#if HAVE_AVX2_CLONE
        if (use_avx2)
            muladd_avx2((const float *)x.buf, (const float *)u.buf, (float)alpha, fused, (float *)out.buf, n);
        else
#endif
            muladd_base((const float *)x.buf, (const float *)u.buf, (float)alpha, fused, (float *)out.buf, n);
        ret = Py_None;
        Py_INCREF(ret);
    }
    PyBuffer_Release(&x);
    PyBuffer_Release(&u);
    PyBuffer_Release(&out);
    return ret;
}

static PyObject *py_isa(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    return PyUnicode_FromString(use_avx2 ? "avx2+fma" : "baseline");
}

static PyMethodDef methods[] = {
    {"nsd", py_nsd, METH_VARARGS,
     "nsd(x, state, alpha, delta, fused, values, levels) -> (nnz, max|k|, hist, Σk², Σx·k)"},
    {"nsd_small", py_nsd_small, METH_VARARGS,
     "nsd_small(x, state, has_uint32, uinteger, alpha, delta, values, levels) -> nsd's tuple + (has_uint32, "
     "uinteger): Generator.random's uniforms, rounded twice"},
    {"view_stats", py_view_stats, METH_VARARGS, "view_stats(x) -> (max|x|, nnz, max|level|, hist) or None"},
    {"muladd", py_muladd, METH_VARARGS, "muladd(x, u, alpha, fused, out): out = x·alpha + u"},
    {"isa", py_isa, METH_NOARGS, "the instruction set of the loops in use"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_nsdkernel", "Compiled NSD and int8-view statistics (hwsim.capture.quant_compiled).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__nsdkernel(void) {
#if HAVE_AVX2_CLONE
    __builtin_cpu_init();
    use_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return PyModule_Create(&module);
}
