/* The int8 view's counts and the FMA probe of _nsdkernel.c (see its header). */
#ifndef HWSIM_NSDKERNEL_VIEW_H
#define HWSIM_NSDKERNEL_VIEW_H

#include "_nsdkernel_common.h"

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

/* The smallest non-negative float y with float32(y / df) >= t: rint(|x| / Δ) >= 2^b exactly when |x| >= it for
 * t = 2^b − ½ (float division and rint are monotonic; 2^b − ½ rounds to the even 2^b), so pass 2 compares bits. */
static uint32_t view_threshold(float df, float t) {
    float c = t * df;
    while (c > 0.0f && nextafterf(c, 0.0f) / df >= t)
        c = nextafterf(c, 0.0f);
    while (c / df < t)
        c = nextafterf(c, INFINITY);
    return f2u(c);
}

INLINE void view_pass2(const float *restrict x, Py_ssize_t n, float df, float mx, view_acc *acc) {
    uint32_t th[8];
    for (int b = 1; b < 8; b++)
        th[b] = view_threshold(df, (float)(1 << b) - 0.5f);
    for (Py_ssize_t off = 0; off < n; off += BLOCK) {
        const int m = (int)(n - off < BLOCK ? n - off : BLOCK);
        int32_t c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0, c6 = 0, c7 = 0;
        for (int i = 0; i < m; i++) {  /* |x| as bits: monotonic for non-negative floats */
            const uint32_t a = f2u(x[off + i]) & 0x7FFFFFFFu;
            c1 += a >= th[1];
            c2 += a >= th[2];
            c3 += a >= th[3];
            c4 += a >= th[4];
            c5 += a >= th[5];
            c6 += a >= th[6];
            c7 += a >= th[7];
        }
        acc->ge[1] += c1;
        acc->ge[2] += c2;
        acc->ge[3] += c3;
        acc->ge[4] += c4;
        acc->ge[5] += c5;
        acc->ge[6] += c6;
        acc->ge[7] += c7;
    }
    acc->qmax_bits = f2u(rintf(mx / df));  /* the largest |x| has the largest rint(|x| / Δ) */
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
        view_pass2(x, n, (float)delta, *mx, acc);                                                 \
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

#endif
