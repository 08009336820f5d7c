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

#endif
