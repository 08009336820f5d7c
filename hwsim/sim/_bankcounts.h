/* Count steps of the Cartesian GEMMs (hwsim.sim.work / hwsim.sim.gemm), compiled. Included by _bankkernel.c, after
 * _bankunits.h (mask4). Integer arithmetic only: the counts equal the numpy path's exactly.
 */

/* Non-zeros of a streamed operand x (N, C, H, W) per (n, c, phase, planar tile): hwsim.sim.work.planar_counts.
 * Phase φ reads the rows h ≡ h_φ (mod step_h), h ≥ h_φ, and the columns likewise (phases: (Φ, 2) int64 rows
 * (h_φ, w_φ)); a row belongs to tile row i when eh[i] ≤ h < eh[i + 1], a column likewise with ew. out: int64
 * (N, C, Φ, tiles), C order, zeroed here. Returns 0 (error set) on bad input or no memory. */
static int planar_tile_counts(const mask4 *x, const int64_t *eh, Py_ssize_t neh, const int64_t *ew, Py_ssize_t new_,
                              const int64_t *phases, Py_ssize_t nph, int64_t step_h, int64_t step_w, int64_t *out,
                              Py_ssize_t nout) {
    const Py_ssize_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    const Py_ssize_t tr = neh - 1, tc = new_ - 1, nt = tr * tc;
    if (tr < 1 || tc < 1 || step_h < 1 || step_w < 1 || eh[0] != 0 || eh[tr] != H || ew[0] != 0 || ew[tc] != W ||
        nout != N * C * nph * nt) {
        PyErr_SetString(PyExc_ValueError, "_bankkernel: planar_counts needs edges from 0 to the plane's size, steps "
                                          ">= 1 and an output of (N, C, phases, tiles)");
        return 0;
    }
    for (Py_ssize_t i = 0; i < tr; i++)
        if (eh[i + 1] < eh[i]) {
            PyErr_SetString(PyExc_ValueError, "_bankkernel: planar_counts: edges must not decrease");
            return 0;
        }
    for (Py_ssize_t i = 0; i < tc; i++)
        if (ew[i + 1] < ew[i]) {
            PyErr_SetString(PyExc_ValueError, "_bankkernel: planar_counts: edges must not decrease");
            return 0;
        }
    int64_t *rt = malloc(((size_t)H + (size_t)W + 1) * sizeof(int64_t));
    if (rt == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    int64_t *ct = rt + H;
    memset(out, 0, (size_t)nout * sizeof(int64_t));
    for (Py_ssize_t p = 0; p < nph; p++) {
        const int64_t h0 = phases[2 * p], w0 = phases[2 * p + 1];
        for (Py_ssize_t h = 0, i = 0; h < H; h++) {
            while (i < tr && eh[i + 1] <= h)
                i++;
            rt[h] = (h >= h0 && (h - h0) % step_h == 0) ? (int64_t)i * tc : -1;
        }
        for (Py_ssize_t w = 0, j = 0; w < W; w++) {
            while (j < tc && ew[j + 1] <= w)
                j++;
            ct[w] = (w >= w0 && (w - w0) % step_w == 0) ? (int64_t)j : -1;
        }
        for (Py_ssize_t n = 0; n < N; n++)
            for (Py_ssize_t c = 0; c < C; c++) {
                int64_t *o = out + ((n * C + c) * nph + p) * nt;
                const char *plane = x->base + n * x->strides[0] + c * x->strides[1];
                for (Py_ssize_t h = 0; h < H; h++) {
                    if (rt[h] < 0)
                        continue;
                    const char *line = plane + h * x->strides[2];
                    int64_t *orow = o + rt[h];
                    for (Py_ssize_t w = 0; w < W; w++)
                        if (ct[w] >= 0 && line[w * x->strides[3]])
                            orow[ct[w]]++;
                }
            }
    }
    free(rt);
    return 1;
}

/* Backward-weight multiplier cycles per (Kc group, image, tile) and products (hwsim.sim.gemm.weight_grad_counts):
 * for Kc groups g0 <= g < g1, images n and output pixels (p, q) of tile (i, j) (eh[i] <= p < eh[i + 1], ew likewise)
 *     cyc[g, n, i·tc + j] += ⌈xg[n, g, p, q] / F⌉ · ceil_y[n, p, q]
 *     products += xg[n, g, p, q] · ysum[n, p, q]
 * xg: (N, G, P, Q), ceil_y and ysum: (N, P, Q), cyc: (G, N, tiles), all C-contiguous int64. Returns 0 (error set) on
 * bad input. */
static int weight_grad_tile_cycles(const int64_t *xg, Py_ssize_t N, Py_ssize_t G, Py_ssize_t P, Py_ssize_t Q,
                                   const int64_t *ceil_y, const int64_t *ysum, const int64_t *eh, Py_ssize_t neh,
                                   const int64_t *ew, Py_ssize_t new_, int64_t f, Py_ssize_t g0, Py_ssize_t g1,
                                   int64_t *cyc, int64_t *products) {
    const Py_ssize_t tr = neh - 1, tc = new_ - 1, nt = tr * tc;
    if (f < 1 || g0 < 0 || g1 > G || g0 > g1 || tr < 1 || tc < 1 || eh[0] != 0 || eh[tr] != P || ew[0] != 0 ||
        ew[tc] != Q) {
        PyErr_SetString(PyExc_ValueError, "_bankkernel: weight_grad_cycles needs f >= 1, 0 <= g0 <= g1 <= groups and "
                                          "edges from 0 to the plane's size");
        return 0;
    }
    int64_t *rt = malloc(((size_t)P + (size_t)Q + 1) * sizeof(int64_t));
    if (rt == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    int64_t *ct = rt + P;
    for (Py_ssize_t p = 0, i = 0; p < P; p++) {
        while (i < tr && eh[i + 1] <= p)
            i++;
        rt[p] = (int64_t)i * tc;
    }
    for (Py_ssize_t q = 0, j = 0; q < Q; q++) {
        while (j < tc && ew[j + 1] <= q)
            j++;
        ct[q] = (int64_t)j;
    }
    int64_t prod = 0;
    for (Py_ssize_t n = 0; n < N; n++)
        for (Py_ssize_t g = g0; g < g1; g++) {
            const int64_t *x = xg + ((n * G + g) * P) * Q;
            const int64_t *cy = ceil_y + n * P * Q, *ys = ysum + n * P * Q;
            int64_t *o = cyc + (g * N + n) * nt;
            for (Py_ssize_t p = 0; p < P; p++)
                for (Py_ssize_t q = 0; q < Q; q++) {
                    const int64_t v = x[p * Q + q];
                    if (v == 0)
                        continue;
                    o[rt[p] + ct[q]] += ((v + f - 1) / f) * cy[p * Q + q];
                    prod += v * ys[p * Q + q];
                }
        }
    free(rt);
    *products = prod;
    return 1;
}

/* Run-length fillers of a bit-packed mask (MSB first, n bits; hwsim.sim.traffic.run_length_fillers for rl >= 3):
 * Σ over the zero runs between consecutive non-zero bytes' set bits (and before the first, after the last) of
 * ⌊run / 2**rl⌋. A run inside one byte (at most 6 zeros) needs no filler when rl >= 3, as the numpy path says. */
static int64_t packed_fillers(const uint8_t *packed, Py_ssize_t nbytes, int64_t n, int rl) {
    static int8_t lead[256], trail[256];  /* first / last set bit of a byte, MSB first (0 for the zero byte) */
    if (lead[1] == 0) {
        for (int b = 1; b < 256; b++) {
            int l = 0, t = 0;
            while (!(b & (0x80 >> l)))
                l++;
            while (!(b & (1 << t)))
                t++;
            lead[b] = (int8_t)l;
            trail[b] = (int8_t)t;
        }
    }
    int64_t total = 0, prev_last = -1;
    for (Py_ssize_t i = 0; i < nbytes; i++) {  /* branch-free: most bytes of a sparse mask are zero, at random */
        const unsigned b = packed[i];
        const int64_t keep = -(int64_t)(b != 0);  /* all ones for a non-zero byte, else 0 */
        const int64_t first = (int64_t)i * 8 + lead[b], last = (int64_t)i * 8 + 7 - trail[b];
        total += ((first - prev_last - 1) >> rl) & keep;
        prev_last += (last - prev_last) & keep;
    }
    if (prev_last < 0)
        return n >> rl;
    return total + ((n - 1 - prev_last) >> rl);
}
