/* The bank-address parts of sampled forward / backward-data units (hwsim.sim.gemm._scatter_units), compiled.
 *
 * Included by _bankkernel.c (one extension). For each sampled unit (image n, channel c, phase φ, tile (y0, x0),
 * Kc group g) it lists, in the numpy path's order:
 *
 *   weight parts, (k, r, s) in C order over the group's Kc output channels o = g·Kc + k < O and the kernel taps of
 *   the unit's phase (every tap in "up" mode; r·dil_h ≡ φ_h and s·dil_w ≡ φ_w (mod stride) in "down" mode) whose
 *   weight W[o, c, r, s] is non-zero (a compact grouped W: only o and c of the same group, read at c mod C/groups):
 *       up:    k·hh·wh + r·dil_h·wh + s·dil_w
 *       down:  k·hh·wh − ⌊(r·dil_h − φ_h) / st_h⌋·wh − ⌊(s·dil_w − φ_w) / st_w⌋
 *   then shifted up by −min(min of the unit's parts, 0);
 *   activation parts, (h, w) in C order over the tile's rows h ∈ [eh[y0], eh[y0 + 1]) with (h − h_φ) ≡ 0 (mod step_h)
 *   and its columns likewise, where X[n, c, h, w] is non-zero:
 *       up:    h·stride_h·wh + w·stride_w
 *       down:  ⌊(h + pad_h − φ_h) / st_h⌋·wh + ⌊(w + pad_w − φ_w) / st_w⌋
 *   then shifted down by the unit's least part.
 *
 * Python's floor division and its modulo sign are reproduced; all int64, so the parts equal numpy's exactly.
 */

static int64_t floor_div(int64_t a, int64_t b) {  /* b > 0 */
    int64_t q = a / b;
    if (a % b != 0 && a < 0)
        q--;
    return q;
}

/* A strided 4-D array of 1-byte items (a bool mask; broadcast views have zero strides). */
typedef struct {
    const char *base;
    Py_ssize_t shape[4], strides[4];
} mask4;

static int mask4_from(Py_buffer *b, mask4 *m, const char *what) {
    if (b->ndim != 4 || b->itemsize != 1) {
        PyErr_Format(PyExc_TypeError, "_bankkernel: %s must be a 4-D array of 1-byte items (bool)", what);
        return 0;
    }
    m->base = b->buf;
    for (int d = 0; d < 4; d++) {
        m->shape[d] = b->shape[d];
        m->strides[d] = b->strides ? b->strides[d] : 0;
    }
    if (!b->strides) {  /* C-contiguous */
        m->strides[3] = 1;
        for (int d = 2; d >= 0; d--)
            m->strides[d] = m->strides[d + 1] * m->shape[d + 1];
    }
    return 1;
}

static inline int mask4_at(const mask4 *m, Py_ssize_t i, Py_ssize_t j, Py_ssize_t k, Py_ssize_t l) {
    return m->base[i * m->strides[0] + j * m->strides[1] + k * m->strides[2] + l * m->strides[3]] != 0;
}

/* g: kc, up, st_h, st_w, dil_h, dil_w, pad_h, pad_w, hh, wh, og, cb (og = 0: W not compact).
 * units: (nu, 5) int64 rows (g, n, c, φ index, tile); phases: (Φ, 4) int64 rows (φ_h, φ_w, h_φ, w_φ);
 * eh, ew: tile edges; tc: tile columns. Writes ax/ay (capacities cap_x, cap_y) and their nu + 1 offsets.
 * Returns 0 and sets an error on bad input. */
static int scatter_unit_parts(const mask4 *x, const mask4 *w, const int64_t *g, const int64_t *units, Py_ssize_t nu,
                              const int64_t *phases, Py_ssize_t nph, const int64_t *eh, Py_ssize_t neh,
                              const int64_t *ew, Py_ssize_t new_, int64_t tc, int64_t *ax, Py_ssize_t cap_x,
                              int64_t *axo, int64_t *ay, Py_ssize_t cap_y, int64_t *ayo) {
    const int64_t kc = g[0], up = g[1], sth = g[2], stw = g[3], dh = g[4], dw = g[5], ph_ = g[6], pw = g[7];
    const int64_t hh = g[8], wh = g[9], og = g[10], cb = g[11];
    const int64_t step_h = up ? 1 : sth, step_w = up ? 1 : stw;
    const Py_ssize_t O = w->shape[0], R = w->shape[2], S = w->shape[3];
    Py_ssize_t nx = 0, ny = 0;
    axo[0] = ayo[0] = 0;
    for (Py_ssize_t u = 0; u < nu; u++) {
        const int64_t *row = units + 5 * u;
        const int64_t gi = row[0], n = row[1], c = row[2], p = row[3], t = row[4];
        if (n < 0 || n >= x->shape[0] || c < 0 || c >= x->shape[1] || p < 0 || p >= nph || t < 0 || tc < 1 ||
            t / tc + 1 >= neh || t % tc + 1 >= new_ || gi < 0) {
            PyErr_Format(PyExc_ValueError, "_bankkernel: sampled unit %zd is outside the layer", u);
            return 0;
        }
        const int64_t fh = phases[4 * p], fw = phases[4 * p + 1], h_ph = phases[4 * p + 2], w_ph = phases[4 * p + 3];
        /* weight parts */
        const Py_ssize_t x0 = nx;
        int64_t lo = 0;
        for (int64_t k = 0; k < kc; k++) {
            const int64_t o = gi * kc + k;
            if (o >= O)
                break;
            int64_t wc = c;
            if (og > 0) {  /* compact grouped weights: o and c in the same group only */
                if (o / og != c / cb)
                    continue;
                wc = c % cb;
            }
            if (wc >= w->shape[1]) {
                PyErr_Format(PyExc_ValueError, "_bankkernel: channel %lld is outside the weights", (long long)c);
                return 0;
            }
            for (Py_ssize_t r = 0; r < R; r++) {
                if (!up && (r * dh) % sth != fh)
                    continue;
                for (Py_ssize_t s = 0; s < S; s++) {
                    if (!up && (s * dw) % stw != fw)
                        continue;
                    if (!mask4_at(w, o, wc, r, s))
                        continue;
                    if (nx >= cap_x) {
                        PyErr_SetString(PyExc_ValueError, "_bankkernel: weight parts exceed their buffer");
                        return 0;
                    }
                    const int64_t v = up ? k * hh * wh + r * dh * wh + s * dw
                                         : k * hh * wh - floor_div(r * dh - fh, sth) * wh - floor_div(s * dw - fw, stw);
                    ax[nx++] = v;
                    if (v < lo)
                        lo = v;
                }
            }
        }
        for (Py_ssize_t j = x0; j < nx; j++)
            ax[j] -= lo;
        axo[u + 1] = nx;
        /* activation parts */
        const Py_ssize_t y0 = ny;
        const int64_t ty = t / tc, tx = t % tc;
        const int64_t hlo = eh[ty], hhi = eh[ty + 1], wlo = ew[tx], whi = ew[tx + 1];
        if (hlo < 0 || hhi > x->shape[2] || wlo < 0 || whi > x->shape[3]) {
            PyErr_SetString(PyExc_ValueError, "_bankkernel: tile edges are outside the plane");
            return 0;
        }
        int64_t least = 0;
        for (int64_t h = hlo; h < hhi; h++) {
            if ((h - h_ph) % step_h != 0)
                continue;
            for (int64_t ww = wlo; ww < whi; ww++) {
                if ((ww - w_ph) % step_w != 0 || !mask4_at(x, n, c, h, ww))
                    continue;
                if (ny >= cap_y) {
                    PyErr_SetString(PyExc_ValueError, "_bankkernel: activation parts exceed their buffer");
                    return 0;
                }
                const int64_t v = up ? h * sth * wh + ww * stw
                                     : floor_div(h + ph_ - fh, sth) * wh + floor_div(ww + pw - fw, stw);
                if (ny == y0 || v < least)
                    least = v;
                ay[ny++] = v;
            }
        }
        for (Py_ssize_t j = y0; j < ny; j++)
            ay[j] -= least;
        ayo[u + 1] = ny;
    }
    return 1;
}

/* The bank-address parts of sampled backward-weight units (hwsim.sim.gemm._weight_grad_units), compiled.
 *
 * Unit (image n, Kc group g, output pixel (p, q)): weight parts k·chunk·R·S for k < Kc with g·Kc + k < K and
 * δ̃z[n, g·Kc + k, p, q] non-zero, in k order; activation parts c·R·S + r·S + s, (c, r, s) in C order over the first
 * min(chunk, C/groups) channels of the unit's conv group (⌊g·Kc / (K/groups)⌋, at most groups − 1) and the kernel
 * taps whose input pixel (p·st_h + r·dil_h − pad_h, q·st_w + s·dil_w − pad_w) is inside the plane and non-zero.
 * g: kc, chunk, groups, st_h, st_w, dil_h, dil_w, pad_h, pad_w, R, S; units: (nu, 4) int64 rows (n, g, p, q). */
static int weight_grad_unit_parts(const mask4 *dz, const mask4 *a, const int64_t *g, const int64_t *units,
                                  Py_ssize_t nu, int64_t *ax, Py_ssize_t cap_x, int64_t *axo, int64_t *ay,
                                  Py_ssize_t cap_y, int64_t *ayo) {
    const int64_t kc = g[0], chunk = g[1], groups = g[2], sth = g[3], stw = g[4], dh = g[5], dw = g[6];
    const int64_t ph_ = g[7], pw = g[8], R = g[9], S = g[10];
    const int64_t K = dz->shape[1], H = a->shape[2], W = a->shape[3];
    const int64_t kg = K / groups, cg = a->shape[1] / groups, rs = R * S;
    const int64_t nch = chunk < cg ? chunk : cg;
    Py_ssize_t nx = 0, ny = 0;
    axo[0] = ayo[0] = 0;
    for (Py_ssize_t u = 0; u < nu; u++) {
        const int64_t n = units[4 * u], gg = units[4 * u + 1], p = units[4 * u + 2], q = units[4 * u + 3];
        if (n < 0 || n >= dz->shape[0] || n >= a->shape[0] || gg < 0 || gg * kc >= K || p < 0 || p >= dz->shape[2] ||
            q < 0 || q >= dz->shape[3]) {
            PyErr_Format(PyExc_ValueError, "_bankkernel: sampled unit %zd is outside the layer", u);
            return 0;
        }
        for (int64_t k = 0; k < kc && gg * kc + k < K; k++) {
            if (!mask4_at(dz, n, gg * kc + k, p, q))
                continue;
            if (nx >= cap_x) {
                PyErr_SetString(PyExc_ValueError, "_bankkernel: weight parts exceed their buffer");
                return 0;
            }
            ax[nx++] = k * (chunk * rs);
        }
        axo[u + 1] = nx;
        int64_t gi = (gg * kc) / kg;
        if (gi > groups - 1)
            gi = groups - 1;
        for (int64_t cc = 0; cc < nch; cc++) {
            const int64_t ch = gi * cg + cc;
            for (int64_t r = 0; r < R; r++) {
                const int64_t h = p * sth + r * dh - ph_;
                if (h < 0 || h >= H)
                    continue;
                for (int64_t s = 0; s < S; s++) {
                    const int64_t ww = q * stw + s * dw - pw;
                    if (ww < 0 || ww >= W || !mask4_at(a, n, ch, h, ww))
                        continue;
                    if (ny >= cap_y) {
                        PyErr_SetString(PyExc_ValueError, "_bankkernel: activation parts exceed their buffer");
                        return 0;
                    }
                    ay[ny++] = cc * rs + r * S + s;
                }
            }
        }
        ayo[u + 1] = ny;
    }
    return 1;
}
