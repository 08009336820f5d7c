/* Compiled accumulator-bank conflict model for hwsim.sim.banks (optional; numpy is the fallback).
 *
 * The model is hwsim/sim/banks.py's (its module doc): per sampled unit of work, per multiplier cycle, the products
 * of one F-chunk of weight addresses × one I-chunk of activation addresses (weight chunk outer, activation chunk
 * inner) land in bank (ax + ay) mod B; then the finite bank-queue rules
 *
 *     stall(t) = max(0, max_b (q_b + L_b) − (D + 1), [W > 0] max_b ⌈L_b / W⌉ − 1)
 *     W = 0:  q_b ← max(max(q_b − stall, 0) + L_b − 1, 0)
 *     W > 0:  q_b ← max(q_b + L_b − 1 − stall, 0)
 *
 * Everything is int64 arithmetic: the results equal the numpy path's exactly. As there, a negative address is a
 * hole (its products are not issued, its cycles still count), and every unit runs for the longest unit's cycles
 * with no products past its own (numpy stacks the units, zero-padded): without a port limit a unit whose last
 * cycle leaves a backlog above the queue's capacity waits once more in its first padded cycle.
 *
 * stalls(ax, ax_off, ay, ay_off, f, i, banks, depth, ports, max_cycles) -> (stall cycles, cycles)
 *     Unit u's weight addresses are ax[ax_off[u] : ax_off[u + 1]], its activation addresses likewise; all four
 *     buffers int64, the offsets non-decreasing from 0 (nu + 1 of them, the same nu for both). Cycles per unit:
 *     min(⌈n_ax / F⌉ · ⌈n_ay / I⌉, max_cycles); the returned cycles are their sum.
 *
 * queue(loads, units, banks, depth, ports) -> stall cycles
 *     The queue rules alone on int64 loads of shape (cycles, units, banks), C order (banks.load_stalls's input).
 *
 * scatter_units(x, w, geometry, units, phases, eh, ew, tc, ax, ax_off, ay, ay_off) -> (weight parts, activation parts)
 *     The bank-address parts of sampled forward / backward-data units, written into the given int64 buffers
 *     (_bankunits.h; hwsim.sim.gemm._scatter_units is the numpy path and the caller).
 *
 * weight_grad_units(dz, a, geometry, units, ax, ax_off, ay, ay_off) -> (weight parts, activation parts)
 *     The same for sampled backward-weight units (hwsim.sim.gemm._weight_grad_units).
 *
 * planar_counts(x, eh, ew, phases, step_h, step_w, out) -> None
 *     Non-zeros of a streamed operand per (image, channel, phase, planar tile) (hwsim.sim.work.planar_counts).
 *
 * weight_grad_cycles(xg, ceil_y, ysum, eh, ew, f, g0, g1, cyc) -> products
 *     Backward-weight multiplier cycles per (Kc group, image, tile), added into cyc, and the products
 *     (hwsim.sim.gemm.weight_grad_counts; _bankcounts.h).
 *
 * fillers(packed, n, rl) -> run-length filler entries of a bit-packed mask of n bits (hwsim.sim.traffic, rl >= 3).
 *
 * Plain C99 and the CPython buffer protocol; the bank loops run without the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_bankunits.h"
#include "_bankcounts.h"
#include "_bankqueue.h"

static int int64_buffer_flags(PyObject *obj, Py_buffer *b, const char *what, int flags) {
    if (PyObject_GetBuffer(obj, b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | flags) < 0)
        return 0;
    const char *fmt = b->format ? b->format : "B";
    if (*fmt == '<' || *fmt == '=' || *fmt == '@')
        fmt++;
    if (b->itemsize != 8 || (strcmp(fmt, "q") != 0 && strcmp(fmt, "l") != 0)) {
        PyErr_Format(PyExc_TypeError, "_bankkernel: %s must be a C-contiguous int64 buffer (format %s, %zd bytes an item)",
                     what, b->format ? b->format : "B", b->itemsize);
        PyBuffer_Release(b);
        return 0;
    }
    return 1;
}

static int int64_buffer(PyObject *obj, Py_buffer *b, const char *what) {
    return int64_buffer_flags(obj, b, what, 0);
}

static int check_params(long long f, long long i, long long banks, long long depth, long long ports, long long max_cycles) {
    if (f < 1 || i < 1 || banks < 1 || depth < 0 || ports < 0 || max_cycles < 0) {
        PyErr_Format(PyExc_ValueError,
                     "_bankkernel: need f, i, banks >= 1 and depth, ports, max_cycles >= 0 (got f=%lld i=%lld banks=%lld "
                     "depth=%lld ports=%lld max_cycles=%lld)", f, i, banks, depth, ports, max_cycles);
        return 0;
    }
    return 1;
}

static int check_offsets(const int64_t *off, Py_ssize_t nu, Py_ssize_t n, const char *what) {
    if (off[0] != 0 || off[nu] != n) {
        PyErr_Format(PyExc_ValueError, "_bankkernel: %s must run from 0 to the address count %zd", what, n);
        return 0;
    }
    for (Py_ssize_t u = 0; u < nu; u++)
        if (off[u + 1] < off[u]) {
            PyErr_Format(PyExc_ValueError, "_bankkernel: %s must not decrease", what);
            return 0;
        }
    return 1;
}

static PyObject *py_stalls(PyObject *self, PyObject *args) {
    PyObject *o[4];
    long long f, i, banks, depth, ports, max_cycles;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOLLLLLL", &o[0], &o[1], &o[2], &o[3], &f, &i, &banks, &depth, &ports, &max_cycles))
        return NULL;
    if (!check_params(f, i, banks, depth, ports, max_cycles))
        return NULL;
    static const char *names[4] = {"ax", "ax_off", "ay", "ay_off"};
    Py_buffer b[4];
    int got = 0;
    PyObject *ret = NULL;
    for (; got < 4; got++)
        if (!int64_buffer(o[got], &b[got], names[got]))
            goto done;
    const Py_ssize_t nx = b[0].len / 8, ny = b[2].len / 8, nu = b[1].len / 8 - 1;
    if (nu < 0 || b[3].len / 8 - 1 != nu) {
        PyErr_SetString(PyExc_ValueError, "_bankkernel: ax_off and ay_off must hold units + 1 offsets each");
        goto done;
    }
    if (!check_offsets(b[1].buf, nu, nx, "ax_off") || !check_offsets(b[3].buf, nu, ny, "ay_off"))
        goto done;
    int64_t *work = calloc(2 * (size_t)banks, sizeof(int64_t));
    if (work == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t stalls, cycles;
    Py_BEGIN_ALLOW_THREADS
    stalls = run_units(b[0].buf, b[1].buf, b[2].buf, b[3].buf, nu, f, i, (Py_ssize_t)banks, depth, ports, max_cycles,
                       work, &cycles);
    Py_END_ALLOW_THREADS
    free(work);
    ret = Py_BuildValue("(LL)", (long long)stalls, (long long)cycles);
done:
    for (int k = 0; k < got; k++)
        PyBuffer_Release(&b[k]);
    return ret;
}

static PyObject *py_queue(PyObject *self, PyObject *args) {
    PyObject *obj;
    long long units, banks, depth, ports;
    (void)self;
    if (!PyArg_ParseTuple(args, "OLLLL", &obj, &units, &banks, &depth, &ports))
        return NULL;
    if (!check_params(1, 1, banks, depth, ports, 0))
        return NULL;
    if (units < 0) {
        PyErr_SetString(PyExc_ValueError, "_bankkernel: units must be >= 0");
        return NULL;
    }
    Py_buffer b;
    if (!int64_buffer(obj, &b, "loads"))
        return NULL;
    const Py_ssize_t n = b.len / 8;
    PyObject *ret = NULL;
    if (units == 0 || n % (units * banks) != 0) {
        if (n != 0 || units != 0)
            PyErr_Format(PyExc_ValueError, "_bankkernel: loads hold %zd values, not cycles x %lld units x %lld banks", n,
                         units, banks);
        else
            ret = PyLong_FromLong(0);
        PyBuffer_Release(&b);
        return ret;
    }
    const Py_ssize_t nt = n / (units * banks), nb = (Py_ssize_t)banks;
    int64_t *q = calloc((size_t)units * (size_t)banks, sizeof(int64_t));
    if (q == NULL) {
        PyBuffer_Release(&b);
        return PyErr_NoMemory();
    }
    int64_t stalls = 0;
    const int64_t *loads = b.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t t = 0; t < nt; t++)
        for (Py_ssize_t u = 0; u < (Py_ssize_t)units; u++)
            stalls += queue_cycle(q + u * nb, loads + (t * units + u) * nb, nb, depth + 1, ports);
    Py_END_ALLOW_THREADS
    free(q);
    PyBuffer_Release(&b);
    return PyLong_FromLongLong((long long)stalls);
}

static PyObject *py_scatter_units(PyObject *self, PyObject *args) {
    PyObject *o[11];
    long long tc;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOOOOLOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &tc, &o[7], &o[8],
                          &o[9], &o[10]))
        return NULL;
    static const char *names[11] = {"x", "w", "geometry", "units", "phases", "eh", "ew", "ax", "ax_off", "ay",
                                    "ay_off"};
    Py_buffer b[11];
    int got = 0;
    PyObject *ret = NULL;
    mask4 x, w;
    for (; got < 11; got++) {
        if (got >= 2) {
            if (!int64_buffer_flags(o[got], &b[got], names[got], got >= 7 ? PyBUF_WRITABLE : 0))
                goto done;
            continue;
        }
        if (PyObject_GetBuffer(o[got], &b[got], PyBUF_RECORDS_RO) < 0)
            goto done;
        if (!mask4_from(&b[got], got ? &w : &x, names[got])) {
            got++;  /* taken: released below */
            goto done;
        }
    }
    const Py_ssize_t ng = b[2].len / 8, nu5 = b[3].len / 8, nph4 = b[4].len / 8;
    const Py_ssize_t nu = b[8].len / 8 - 1;
    if (ng != 12 || nu5 % 5 != 0 || nu5 / 5 != nu || b[10].len / 8 - 1 != nu || nph4 % 4 != 0 || nph4 == 0) {
        PyErr_SetString(PyExc_ValueError, "_bankkernel: scatter_units needs 12 geometry values, (units, 5) units, "
                                          "(phases, 4) phases and units + 1 offsets of each part");
        goto done;
    }
    const int64_t *g = b[2].buf;
    if (g[0] < 1 || g[2] < 1 || g[3] < 1 || g[4] < 1 || g[5] < 1 || g[10] < 0 || (g[10] > 0 && g[11] < 1)) {
        PyErr_SetString(PyExc_ValueError, "_bankkernel: scatter_units needs kc, strides, dilations >= 1");
        goto done;
    }
    /* with the GIL held: a few thousand parts, and bad input raises from inside the loop */
    const int ok = scatter_unit_parts(&x, &w, g, b[3].buf, nu, b[4].buf, nph4 / 4, b[5].buf, b[5].len / 8, b[6].buf,
                            b[6].len / 8, tc, b[7].buf, b[7].len / 8, b[8].buf, b[9].buf, b[9].len / 8, b[10].buf);
    if (ok)
        ret = Py_BuildValue("(LL)", (long long)((int64_t *)b[8].buf)[nu], (long long)((int64_t *)b[10].buf)[nu]);
done:
    for (int k = 0; k < got; k++)
        PyBuffer_Release(&b[k]);
    return ret;
}

static PyObject *py_weight_grad_units(PyObject *self, PyObject *args) {
    PyObject *o[8];
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7]))
        return NULL;
    static const char *names[8] = {"dz", "a", "geometry", "units", "ax", "ax_off", "ay", "ay_off"};
    Py_buffer b[8];
    int got = 0;
    PyObject *ret = NULL;
    mask4 dz, a;
    for (; got < 8; got++) {
        if (got >= 2) {
            if (!int64_buffer_flags(o[got], &b[got], names[got], got >= 4 ? PyBUF_WRITABLE : 0))
                goto done;
            continue;
        }
        if (PyObject_GetBuffer(o[got], &b[got], PyBUF_RECORDS_RO) < 0)
            goto done;
        if (!mask4_from(&b[got], got ? &a : &dz, names[got])) {
            got++;  /* taken: released below */
            goto done;
        }
    }
    const Py_ssize_t nu = b[5].len / 8 - 1;
    if (b[2].len / 8 != 11 || b[3].len / 8 != 4 * nu || b[7].len / 8 - 1 != nu) {
        PyErr_SetString(PyExc_ValueError, "_bankkernel: weight_grad_units needs 11 geometry values, (units, 4) units "
                                          "and units + 1 offsets of each part");
        goto done;
    }
    const int64_t *g = b[2].buf;
    if (g[0] < 1 || g[1] < 1 || g[2] < 1 || g[3] < 1 || g[4] < 1 || g[5] < 1 || g[6] < 1 || g[9] < 1 || g[10] < 1 ||
        dz.shape[1] % g[2] != 0 || a.shape[1] % g[2] != 0) {
        PyErr_SetString(PyExc_ValueError, "_bankkernel: weight_grad_units needs kc, chunk, groups, strides, dilations "
                                          "and the kernel >= 1, and channels divisible by groups");
        goto done;
    }
    if (weight_grad_unit_parts(&dz, &a, g, b[3].buf, nu, b[4].buf, b[4].len / 8, b[5].buf, b[6].buf, b[6].len / 8,
                               b[7].buf))
        ret = Py_BuildValue("(LL)", (long long)((int64_t *)b[5].buf)[nu], (long long)((int64_t *)b[7].buf)[nu]);
done:
    for (int k = 0; k < got; k++)
        PyBuffer_Release(&b[k]);
    return ret;
}

static PyObject *py_planar_counts(PyObject *self, PyObject *args) {
    PyObject *o[5];
    long long sh, sw;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOLLO", &o[0], &o[1], &o[2], &o[3], &sh, &sw, &o[4]))
        return NULL;
    static const char *names[5] = {"x", "eh", "ew", "phases", "out"};
    Py_buffer b[5];
    int got = 0;
    PyObject *ret = NULL;
    mask4 x;
    if (PyObject_GetBuffer(o[0], &b[0], PyBUF_RECORDS_RO) < 0)
        return NULL;
    got = 1;
    if (!mask4_from(&b[0], &x, names[0]))
        goto done;
    for (; got < 5; got++)
        if (!int64_buffer_flags(o[got], &b[got], names[got], got == 4 ? PyBUF_WRITABLE : 0))
            goto done;
    if (b[3].len / 8 % 2 != 0 || b[3].len == 0) {
        PyErr_SetString(PyExc_ValueError, "_bankkernel: planar_counts needs (phases, 2) phase offsets");
        goto done;
    }
    if (planar_tile_counts(&x, b[1].buf, b[1].len / 8, b[2].buf, b[2].len / 8, b[3].buf, b[3].len / 16, sh, sw,
                           b[4].buf, b[4].len / 8)) {
        Py_INCREF(Py_None);
        ret = Py_None;
    }
done:
    for (int k = 0; k < got; k++)
        PyBuffer_Release(&b[k]);
    return ret;
}

static PyObject *py_weight_grad_cycles(PyObject *self, PyObject *args) {
    PyObject *o[6];
    long long f, g0, g1;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOOLLLO", &o[0], &o[1], &o[2], &o[3], &o[4], &f, &g0, &g1, &o[5]))
        return NULL;
    static const char *names[6] = {"xg", "ceil_y", "ysum", "eh", "ew", "cyc"};
    Py_buffer b[6];
    int got = 0;
    PyObject *ret = NULL;
    for (; got < 6; got++)
        if (!int64_buffer_flags(o[got], &b[got], names[got], got == 5 ? PyBUF_WRITABLE : 0))
            goto done;
    if (b[0].ndim != 4 || b[1].ndim != 3 || b[2].ndim != 3 || b[5].ndim != 3) {
        PyErr_SetString(PyExc_ValueError, "_bankkernel: weight_grad_cycles needs xg (N, G, P, Q), ceil_y and ysum "
                                          "(N, P, Q) and cyc (G, N, tiles)");
        goto done;
    }
    const Py_ssize_t N = b[0].shape[0], G = b[0].shape[1], P = b[0].shape[2], Q = b[0].shape[3];
    const Py_ssize_t nt = (b[3].len / 8 - 1) * (b[4].len / 8 - 1);
    for (int k = 1; k < 3; k++)
        if (b[k].shape[0] != N || b[k].shape[1] != P || b[k].shape[2] != Q) {
            PyErr_SetString(PyExc_ValueError, "_bankkernel: weight_grad_cycles: ceil_y and ysum must be (N, P, Q) of xg");
            goto done;
        }
    if (b[5].shape[0] != G || b[5].shape[1] != N || b[5].shape[2] != nt) {
        PyErr_SetString(PyExc_ValueError, "_bankkernel: weight_grad_cycles: cyc must be (G, N, tiles)");
        goto done;
    }
    int64_t products;
    if (weight_grad_tile_cycles(b[0].buf, N, G, P, Q, b[1].buf, b[2].buf, b[3].buf, b[3].len / 8, b[4].buf,
                                b[4].len / 8, f, g0, g1, b[5].buf, &products))
        ret = PyLong_FromLongLong((long long)products);
done:
    for (int k = 0; k < got; k++)
        PyBuffer_Release(&b[k]);
    return ret;
}

static PyObject *py_fillers(PyObject *self, PyObject *args) {
    PyObject *obj;
    long long n, rl;
    (void)self;
    if (!PyArg_ParseTuple(args, "OLL", &obj, &n, &rl))
        return NULL;
    Py_buffer b;
    if (PyObject_GetBuffer(obj, &b, PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    PyObject *ret = NULL;
    if (b.itemsize != 1)
        PyErr_Format(PyExc_ValueError, "_bankkernel: fillers needs bytes (uint8), got %zd-byte items", b.itemsize);
    else if (rl < 3 || rl > 62 || n < 0 || (n + 7) / 8 != b.len)
        PyErr_Format(PyExc_ValueError, "_bankkernel: fillers needs (n + 7) / 8 packed bytes of n bits and 3 <= rl <= 62 "
                                       "(got %zd bytes, n=%lld, rl=%lld)", b.len, n, rl);
    else
        ret = PyLong_FromLongLong((long long)packed_fillers(b.buf, b.len, (int64_t)n, (int)rl));
    PyBuffer_Release(&b);
    return ret;
}

static PyMethodDef methods[] = {
    {"stalls", py_stalls, METH_VARARGS,
     "stalls(ax, ax_off, ay, ay_off, f, i, banks, depth, ports, max_cycles) -> (stall cycles, cycles)"},
    {"queue", py_queue, METH_VARARGS, "queue(loads, units, banks, depth, ports) -> stall cycles"},
    {"scatter_units", py_scatter_units, METH_VARARGS,
     "scatter_units(x, w, geometry, units, phases, eh, ew, tc, ax, ax_off, ay, ay_off) -> (weight parts, activation "
     "parts)"},
    {"weight_grad_units", py_weight_grad_units, METH_VARARGS,
     "weight_grad_units(dz, a, geometry, units, ax, ax_off, ay, ay_off) -> (weight parts, activation parts)"},
    {"planar_counts", py_planar_counts, METH_VARARGS,
     "planar_counts(x, eh, ew, phases, step_h, step_w, out) -> None: non-zeros per (n, c, phase, tile) into out"},
    {"weight_grad_cycles", py_weight_grad_cycles, METH_VARARGS,
     "weight_grad_cycles(xg, ceil_y, ysum, eh, ew, f, g0, g1, cyc) -> products: backward-weight cycles added into cyc"},
    {"fillers", py_fillers, METH_VARARGS, "fillers(packed, n, rl) -> run-length fillers of a bit-packed mask (rl >= 3)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_bankkernel", "Compiled accumulator-bank conflict model (hwsim.sim.banks).",
    -1, methods, NULL, NULL, NULL, NULL,
};

/* The interface version hwsim.sim.banks checks (BANK_KERNEL_API): raise it with any change of a function's
 * arguments or results, so a stale build is refused (the numpy path runs) instead of failing. */
#define BANK_KERNEL_API 2

PyMODINIT_FUNC PyInit__bankkernel(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "API", BANK_KERNEL_API) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
