/* stats.c - Wilson score intervals, the paired bootstrap (means, percentile intervals, p-values), McNemar (exact and
 * chi-square), Holm's correction, Kendall's tau-b. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

uint64_t ev_stream_seed(uint64_t seed, const char *a, const char *b)
{
    uint64_t h = hx_fnv1a(HX_FNV1A_INIT ^ seed, a, strlen(a));
    h = hx_fnv1a(h, "/", 1);
    return hx_fnv1a(h, b, strlen(b));
}

void ev_bootstrap_means(const double *const *x, int k, int n, int reps, uint64_t seed, double *out)
{
    if (n <= 0 || reps <= 0 || k <= 0) return;
    double *s = xmalloc((size_t)k * sizeof *s);
    hx_rng g;
    hx_rng_seed(&g, seed);
    for (int r = 0; r < reps; r++) {
        for (int j = 0; j < k; j++) s[j] = 0;
        for (int i = 0; i < n; i++) {
            uint64_t d = hx_rng_below(&g, (uint64_t)n);
            for (int j = 0; j < k; j++) s[j] += x[j][d];
        }
        for (int j = 0; j < k; j++) out[(size_t)r * k + j] = s[j] / n;
    }
    free(s);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

ev_ci ev_percentile(double *v, int reps, double level)
{
    ev_ci r = {0, 0};
    if (reps <= 0) return r;
    qsort(v, (size_t)reps, sizeof *v, cmp_double);
    /* nearest-rank order statistics: the (1-level)/2 and (1+level)/2 quantiles */
    int lo = (int)floor((1 - level) / 2 * reps), hi = (int)ceil((1 + level) / 2 * reps) - 1;
    if (lo < 0) lo = 0;
    if (hi >= reps) hi = reps - 1;
    if (hi < lo) hi = lo;
    r.lo = v[lo];
    r.hi = v[hi];
    return r;
}

double ev_bootstrap_p(const double *v, int reps)
{
    long le = 0, ge = 0;
    for (int r = 0; r < reps; r++) le += v[r] <= 0, ge += v[r] >= 0;
    double p = 2.0 * (double)(1 + (le < ge ? le : ge)) / (reps + 1.0);
    return p > 1 ? 1 : p;
}

ev_ci ev_bootstrap_paired(const double *a, const double *b, int n, int reps, uint64_t seed, double level)
{
    ev_ci r = {0, 0};
    if (n <= 0 || reps <= 0) return r;
    double *d = xmalloc((size_t)n * sizeof *d), *means = xmalloc((size_t)reps * sizeof *means);
    for (int i = 0; i < n; i++) d[i] = a[i] - (b ? b[i] : 0);
    const double *x[1] = {d};
    ev_bootstrap_means(x, 1, n, reps, seed, means);
    r = ev_percentile(means, reps, level);
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

void ev_holm(const double *p, int m, double *adj)
{
    int *o = xmalloc((size_t)(m > 0 ? m : 1) * sizeof *o);
    for (int i = 0; i < m; i++) o[i] = i;
    for (int i = 1; i < m; i++) /* stable insertion sort of the indices by p */
        for (int j = i; j > 0 && p[o[j]] < p[o[j - 1]]; j--) {
            int t = o[j];
            o[j] = o[j - 1];
            o[j - 1] = t;
        }
    double run = 0;
    for (int i = 0; i < m; i++) {
        double a = (double)(m - i) * p[o[i]];
        if (a > run) run = a;
        adj[o[i]] = run > 1 ? 1 : run;
    }
    free(o);
}

static int sgn(double v) { return (v > 0) - (v < 0); }

int ev_kendall_tau(const double *x, const double *y, int n, double *tau)
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
    /* pairs untied in x = conc + disc + ty, untied in y = conc + disc + tx */
    double den = sqrt((double)(conc + disc + tx) * (double)(conc + disc + ty));
    if (!(den > 0)) return 0;
    *tau = (conc - disc) / den;
    return 1;
}

double ev_t95(int df)
{
    static const double t[] = {12.7062047, 4.30265273, 3.18244631, 2.77644511, 2.57058184, 2.44691185, 2.36462425,
                               2.30600414, 2.26215716, 2.22813885, 2.20098516, 2.17881283, 2.16036866, 2.14478669,
                               2.13144955, 2.11990530, 2.10981558, 2.10092204, 2.09302405, 2.08596345, 2.07961384,
                               2.07387307, 2.06865761, 2.06389856, 2.05953855, 2.05552944, 2.05183052, 2.04840714,
                               2.04522964, 2.04227246};
    if (df < 1) BUG("ev_t95: df %d", df);
    if (df <= 30) return t[df - 1];
    double z = EV_Z95, z2 = z * z, v = df;
    return z + z * (z2 + 1) / (4 * v) + z * ((5 * z2 + 16) * z2 + 3) / (96 * v * v) +
           z * (((3 * z2 + 19) * z2 + 17) * z2 - 15) / (384 * v * v * v);
}

ev_seedstat ev_seed_mean(const double *v, int k, int n)
{
    if (k < 2 || n < 2) BUG("ev_seed_mean: %d seeds, %d items", k, n);
    ev_seedstat r = {0};
    double *theta = xcalloc((size_t)k, sizeof *theta), *vbar = xcalloc((size_t)n, sizeof *vbar);
    for (int s = 0; s < k; s++)
        for (int i = 0; i < n; i++) theta[s] += v[(size_t)s * n + i] / n, vbar[i] += v[(size_t)s * n + i] / k;
    for (int s = 0; s < k; s++) r.mean += theta[s] / k;
    double ss = 0, si = 0, m = 0;
    for (int s = 0; s < k; s++) ss += (theta[s] - r.mean) * (theta[s] - r.mean);
    for (int i = 0; i < n; i++) m += vbar[i] / n;
    for (int i = 0; i < n; i++) si += (vbar[i] - m) * (vbar[i] - m);
    r.sd_seed = sqrt(ss / (k - 1));
    r.se_item = sqrt(si / (n - 1) / n);
    double tz = ev_t95(k - 1) / EV_Z95;
    r.se = sqrt(tz * tz * r.sd_seed * r.sd_seed / k + r.se_item * r.se_item);
    r.lo = r.mean - EV_Z95 * r.se;
    r.hi = r.mean + EV_Z95 * r.se;
    r.p = r.se > 0 ? erfc(fabs(r.mean) / r.se / sqrt(2)) : r.mean == 0 ? 1 : 0;
    free(theta);
    free(vbar);
    return r;
}
