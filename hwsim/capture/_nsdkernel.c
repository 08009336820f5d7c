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
 * nsd_ctr(x, k0, k1, s, values, levels)
 *     NSD with the counter-based dither (_nsdkernel_ctr.h): σ from float64 Σx, Σx² (one read), Δ = float32(s·σ), then
 *     one pass as nsd's with u a hash of (k0, k1, element index) and two roundings. Returns (Δ, Σx, Σx², nnz,
 *     max|k|, hist, Σk², Σx·k), Δ = 0 (all-zero outputs) when float32(s·σ) is not a normal number, or None when
 *     Σx or Σx² is not finite (NaN/Inf in x).
 *
 * ctr_uniform(k0, k1, start, out)
 *     The counter dither's u of elements start, start + 1, … into the float32 buffer ``out`` (tests).
 *
 * set_isa(avx2) -> previous
 *     Use the AVX2 loops (where the CPU has them) or the baseline C loops (tests pin both against numpy).
 *
 * muladd(x, u, alpha, fused, out)
 *     out = x·alpha + u rounded once (fused) or twice: the caller's probe of torch's arithmetic.
 *
 * The loops live in _nsdkernel_nsd.h (NSD) and _nsdkernel_view.h (int8 view, probe), the generator and the constants
 * in _nsdkernel_common.h, the counter dither in _nsdkernel_ctr.h; this file holds the Python bindings. All buffers are C-contiguous float32 (the caller checks dtypes and lengths); the loops run without the GIL.
 * Built with -ffp-contract=off so that "rounded twice" stays so; on x86-64 a copy of each loop is compiled for
 * AVX2 + FMA and chosen at run time (the other copy calls the C library's fmaf: the same results, slower).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_nsdkernel_common.h"
#include "_nsdkernel_nsd.h"
#include "_nsdkernel_ctr.h"
#include "_nsdkernel_view.h"

/* ------------------------------------------------------------------------------------------------ Python */

static int use_avx2 = 0;

static int float_buffer(Py_buffer *b, Py_ssize_t n, const char *what) {
    if (b->len != n * (Py_ssize_t)sizeof(float)) {
        PyErr_Format(PyExc_ValueError, "_nsdkernel: %s holds %zd bytes, expected %zd float32 values", what, b->len, n);
        return 0;
    }
    return 1;
}

/* The output buffers of an NSD call: ``values`` (n floats) and, unless ``levels`` is None, the levels (n floats,
 * writable, C-contiguous; *have_lev set once acquired, so the caller releases it). 0 with an exception set. */
static int out_buffers(Py_buffer *val, PyObject *levels, Py_buffer *lev, Py_ssize_t n, int *have_lev) {
    if (!float_buffer(val, n, "values"))
        return 0;
    if (levels == Py_None)
        return 1;
    if (PyObject_GetBuffer(levels, lev, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        return 0;
    *have_lev = 1;
    return float_buffer(lev, n, "levels");
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
    if (!out_buffers(&val, levels, &lev, n, &have_lev))
        goto done;
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


static PyObject *hist_tuple(const nsd_acc *acc) {
    PyObject *hist = PyTuple_New(NBINS);
    if (hist == NULL)
        return NULL;
    for (int b = 0; b < NBINS; b++) {
        int64_t c = acc->hist[b];
        if (b == 0)
            c = acc->nnz - acc->ge2;
        else if (b == 1) {
            int64_t ge4 = 0;
            for (int j = 2; j < NBINS; j++)
                ge4 += acc->hist[j];
            c = acc->ge2 - ge4;
        }
        PyTuple_SET_ITEM(hist, b, PyLong_FromLongLong(c));
    }
    return hist;
}

static PyObject *py_nsd_ctr(PyObject *self, PyObject *args) {
    Py_buffer x, val, lev = {0};
    unsigned int k0, k1;
    double s;
    PyObject *levels, *ret = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*IIdw*O", &x, &k0, &k1, &s, &val, &levels))
        return NULL;
    const Py_ssize_t n = x.len / (Py_ssize_t)sizeof(float);
    int have_lev = 0;
    if (!out_buffers(&val, levels, &lev, n, &have_lev))
        goto done;
    double s1 = 0.0, s2 = 0.0;
    float delta = 0.0f;
    nsd_acc acc;
    memset(&acc, 0, sizeof acc);
    int finite = 1;
    Py_BEGIN_ALLOW_THREADS
#if HAVE_AVX2_CLONE
    if (use_avx2)
        ctr_sums_avx2((const float *)x.buf, n, &s1, &s2);
    else
#endif
        ctr_sums_base((const float *)x.buf, n, &s1, &s2);
    finite = isfinite(s1) && isfinite(s2);
    if (finite && n > 0) {
        const double mean = s1 / (double)n;
        double var = s2 / (double)n - mean * mean;
        if (!(var > 0.0))
            var = 0.0;
        delta = (float)(s * sqrt(var));
    }
    if (finite && delta >= FLT_MIN && isfinite(delta)) {
        const float alpha = (float)(1.0 / (double)delta);
#if HAVE_AVX2_CLONE
        if (use_avx2)
            nsd_ctr_run_avx2((const float *)x.buf, (float *)val.buf, have_lev ? (float *)lev.buf : NULL, n,
                             (uint32_t)k0, (uint32_t)k1, alpha, delta, &acc);
        else
#endif
            nsd_ctr_run_base((const float *)x.buf, (float *)val.buf, have_lev ? (float *)lev.buf : NULL, n,
                             (uint32_t)k0, (uint32_t)k1, alpha, delta, &acc);
    } else if (finite && !isinf(delta)) {  /* σ = 0 or Δ below the smallest normal: all-zero levels */
        delta = 0.0f;
        memset(val.buf, 0, (size_t)n * sizeof(float));
        if (have_lev)
            memset(lev.buf, 0, (size_t)n * sizeof(float));
    }
    Py_END_ALLOW_THREADS
    if (!finite) {
        ret = Py_None;
        Py_INCREF(ret);
        goto done;
    }
    PyObject *hist = hist_tuple(&acc);
    if (hist != NULL)
        ret = Py_BuildValue("(dddLdNdd)", (double)delta, s1, s2, (long long)acc.nnz, (double)u2f(acc.amax_bits), hist,
                            acc.skk, acc.sxk);
done:
    PyBuffer_Release(&x);
    PyBuffer_Release(&val);
    if (have_lev)
        PyBuffer_Release(&lev);
    return ret;
}

static PyObject *py_ctr_uniform(PyObject *self, PyObject *args) {
    Py_buffer out;
    unsigned int k0, k1;
    unsigned long long start;
    (void)self;
    if (!PyArg_ParseTuple(args, "IIKw*", &k0, &k1, &start, &out))
        return NULL;
    const Py_ssize_t n = out.len / (Py_ssize_t)sizeof(float);
    float *u = (float *)out.buf;
    Py_ssize_t i = 0;
    while (i < n) {  /* chunks that stop at multiples of 2^32 (ctr_uniforms keeps ⌊i / 2^32⌋ fixed) */
        const uint64_t at = (uint64_t)start + (uint64_t)i;
        const uint64_t room = ((at >> 32) + 1) * (UINT64_C(1) << 32) - at;
        Py_ssize_t m = n - i < BLOCK ? n - i : BLOCK;
        if ((uint64_t)m > room)
            m = (Py_ssize_t)room;
        ctr_uniforms(at, (int)m, (uint32_t)k0, (uint32_t)k1, u + i);
        i += m;
    }
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

static PyObject *py_set_isa(PyObject *self, PyObject *args) {
    int want;
    (void)self;
    if (!PyArg_ParseTuple(args, "p", &want))
        return NULL;
    const int before = use_avx2;
#if HAVE_AVX2_CLONE
    __builtin_cpu_init();
    use_avx2 = want && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return PyBool_FromLong(before);
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
    {"nsd_ctr", py_nsd_ctr, METH_VARARGS,
     "nsd_ctr(x, k0, k1, s, values, levels) -> (Δ, Σx, Σx², nnz, max|k|, hist, Σk², Σx·k) or None (NaN/Inf)"},
    {"ctr_uniform", py_ctr_uniform, METH_VARARGS, "ctr_uniform(k0, k1, start, out): the counter dither's u"},
    {"set_isa", py_set_isa, METH_VARARGS, "set_isa(avx2) -> previous: AVX2 loops (where available) or baseline"},
    {"isa", py_isa, METH_NOARGS, "the instruction set of the loops in use"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_nsdkernel", "Compiled NSD and int8-view statistics (hwsim.capture.quant_compiled).",
    -1, methods, NULL, NULL, NULL, NULL,
};

/* The interface version hwsim.capture.quant_compiled checks (NSD_KERNEL_API): raise it with any change of a
 * function's arguments or results, so a stale build is refused (the numpy path runs) instead of failing. */
#define NSD_KERNEL_API 2

PyMODINIT_FUNC PyInit__nsdkernel(void) {
#if HAVE_AVX2_CLONE
    __builtin_cpu_init();
    use_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "API", NSD_KERNEL_API) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
