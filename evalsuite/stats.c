/* stats.c - Wilson score intervals, paired percentile bootstrap, McNemar (exact and chi-square), Kendall's tau-b. */
#include <math.h>
#include <stdlib.h>

#include "base/base.h"
#include "evalsuite/stats.h"

ev_ci ev_wilson(int k, int n, double z)
{
    ev_ci r = {0, 1};
    if (n <= 0) return r;
    /* Wilson (1927): (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n) */
    double p = (double)k / n, z2 = z * z, den = 1 + z2 / n;
    double mid = (p + z2 / (2.0 * n)) / den, half = z * sqrt(p * (1 - p) / n + z2 / (4.0 * n * n)) / den;
    r.lo = mid - half < 0 ? 0 : mid - half;
    r.hi = mid + half > 1 ? 1 : mid + half;
    return r;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

ev_ci ev_bootstrap_paired(const double *a, const double *b, int n, int reps, uint64_t seed, double level)
{
    ev_ci r = {0, 0};
    if (n <= 0 || reps <= 0) return r;
    double *d = xmalloc((size_t)n * sizeof *d), *means = xmalloc((size_t)reps * sizeof *means);
    for (int i = 0; i < n; i++) d[i] = a[i] - (b ? b[i] : 0);
    hx_rng g;
    hx_rng_seed(&g, seed);
    for (int k = 0; k < reps; k++) {
        double s = 0;
        for (int i = 0; i < n; i++) s += d[hx_rng_below(&g, (uint64_t)n)];
        means[k] = s / n;
    }
    qsort(means, (size_t)reps, sizeof *means, cmp_double);
    /* percentile interval: the (1-level)/2 and (1+level)/2 order statistics (nearest rank) */
    double lo_q = (1 - level) / 2, hi_q = (1 + level) / 2;
    int lo = (int)floor(lo_q * reps), hi = (int)ceil(hi_q * reps) - 1;
    if (lo < 0) lo = 0;
    if (hi >= reps) hi = reps - 1;
    if (hi < lo) hi = lo;
    r.lo = means[lo];
    r.hi = means[hi];
    free(d);
    free(means);
    return r;
}

double ev_mcnemar_exact(int b, int c)
{
    int n = b + c, k = b < c ? b : c;
    if (n <= 0) return 1;
    /* sum_{i<=k} C(n,i) / 2^n in log space (lgamma) so large n does not overflow */
    double s = 0;
    for (int i = 0; i <= k; i++) s += exp(lgamma(n + 1.0) - lgamma(i + 1.0) - lgamma(n - i + 1.0) - n * log(2.0));
    double p = 2 * s;
    return p > 1 ? 1 : p;
}

double ev_mcnemar_chi2(int b, int c, double *p)
{
    if (b + c <= 0) {
        if (p) *p = 1;
        return 0;
    }
    double d = fabs((double)b - c) - 1;
    if (d < 0) d = 0;
    double x2 = d * d / (b + c);
    if (p) *p = erfc(sqrt(x2 / 2)); /* chi-square survival, 1 df */
    return x2;
}

static int sgn(double v) { return (v > 0) - (v < 0); }

double ev_kendall_tau(const double *x, const double *y, int n)
{
    long conc = 0, disc = 0, tx = 0, ty = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            int a = sgn(x[i] - x[j]), b = sgn(y[i] - y[j]);
            if (a == 0 && b == 0) continue;
            if (a == 0) tx++;
            else if (b == 0) ty++;
            else if (a == b) conc++;
            else disc++;
        }
    double den = sqrt((double)(conc + disc + tx) * (double)(conc + disc + ty));
    return den > 0 ? (conc - disc) / den : 0;
}
