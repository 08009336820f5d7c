/* The finite bank-queue model of hwsim.sim.banks, compiled (the rules in _bankkernel.c's header comment).
 *
 * Included by _bankkernel.c (one extension): one cycle of the queue rules, the padded cycles' drain and a whole
 * sample of units (run_units), all int64 so the stalls equal the numpy path's exactly.
 */

/* One cycle of the queue model on bank loads L (banks entries), backlogs q updated in place: the stall. */
static int64_t queue_cycle(int64_t *q, const int64_t *L, Py_ssize_t banks, int64_t cap, int64_t ports) {
    int64_t top = 0, port_wait = 0;
    for (Py_ssize_t b = 0; b < banks; b++) {
        const int64_t v = q[b] + L[b];
        if (v > top)
            top = v;
        if (ports > 0 && L[b] > 0) {
            const int64_t w = (L[b] + ports - 1) / ports - 1;
            if (w > port_wait)
                port_wait = w;
        }
    }
    int64_t s = top - cap;
    if (s < 0)
        s = 0;
    if (port_wait > s)
        s = port_wait;
    if (ports > 0) {
        for (Py_ssize_t b = 0; b < banks; b++) {
            const int64_t v = q[b] + L[b] - 1 - s;
            q[b] = v > 0 ? v : 0;
        }
    } else {
        for (Py_ssize_t b = 0; b < banks; b++) {
            int64_t v = q[b] - s;
            if (v < 0)
                v = 0;
            v += L[b] - 1;
            q[b] = v > 0 ? v : 0;
        }
    }
    return s;
}

/* The stall of one cycle without products (a padded cycle) on backlogs q; q is not needed afterwards. */
static int64_t idle_stall(const int64_t *q, Py_ssize_t banks, int64_t cap) {
    int64_t top = 0;
    for (Py_ssize_t b = 0; b < banks; b++)
        if (q[b] > top)
            top = q[b];
    return top > cap ? top - cap : 0;
}

static int64_t unit_cycles(int64_t nx, int64_t ny, int64_t f, int64_t i, int64_t max_cycles) {
    if (nx == 0 || ny == 0)
        return 0;
    const int64_t n = ((nx + f - 1) / f) * ((ny + i - 1) / i);
    return n < max_cycles ? n : max_cycles;
}

/* work: 2·banks int64 (backlogs, loads). Returns the stall cycles of every unit; *cycles gets Σ cycles. */
static int64_t run_units(const int64_t *ax, const int64_t *axo, const int64_t *ay, const int64_t *ayo, Py_ssize_t nu,
                         int64_t f, int64_t i, Py_ssize_t banks, int64_t depth, int64_t ports, int64_t max_cycles,
                         int64_t *work, int64_t *cycles) {
    int64_t t_max = 0, total = 0, stalls = 0;
    for (Py_ssize_t u = 0; u < nu; u++) {
        const int64_t n = unit_cycles(axo[u + 1] - axo[u], ayo[u + 1] - ayo[u], f, i, max_cycles);
        total += n;
        if (n > t_max)
            t_max = n;
    }
    *cycles = total;
    int64_t *q = work, *L = work + banks;
    const int64_t cap = depth + 1;
    for (Py_ssize_t u = 0; u < nu; u++) {
        const int64_t *x = ax + axo[u], *y = ay + ayo[u];
        const int64_t nx = axo[u + 1] - axo[u], ny = ayo[u + 1] - ayo[u];
        const int64_t n = unit_cycles(nx, ny, f, i, max_cycles);
        if (n == 0)
            continue;
        const int64_t nac = (ny + i - 1) / i;
        memset(q, 0, (size_t)banks * sizeof(int64_t));
        for (int64_t t = 0; t < n; t++) {
            const int64_t j0 = (t / nac) * f, l0 = (t % nac) * i;
            const int64_t j1 = j0 + f < nx ? j0 + f : nx, l1 = l0 + i < ny ? l0 + i : ny;
            memset(L, 0, (size_t)banks * sizeof(int64_t));
            for (int64_t j = j0; j < j1; j++) {
                const int64_t xv = x[j];
                if (xv < 0)
                    continue;
                for (int64_t l = l0; l < l1; l++) {
                    const int64_t yv = y[l];
                    if (yv >= 0)
                        L[(xv + yv) % banks]++;
                }
            }
            stalls += queue_cycle(q, L, banks, cap, ports);
        }
        if (n < t_max)  /* numpy's zero-padded cycles: the first drains any backlog above capacity (none with ports) */
            stalls += idle_stall(q, banks, cap);
    }
    return stalls;
}
