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

/*
 * hx_rng_below(g, n)'s draws for one n without its two 64-bit divisions per draw, the bootstrap's inner loop: the
 * same rejection limit, computed once, and x % n by Barrett reduction: with m = floor((2^64 - 1) / n),
 * q = floor(x * m / 2^64) is floor(x / n) or one less, so x - q * n needs at most one correction. The draws are
 * hx_rng_below's, one for one (test_stats checks the bootstrap against a loop over hx_rng_below).
 */
typedef struct below {
    uint64_t n, lim, m;
} below;

static below below_init(uint64_t n)
{
    below b = {n, UINT64_MAX - UINT64_MAX % n, UINT64_MAX / n};
    return b;
}

static inline uint64_t below_draw(hx_rng *g, const below *b)
{
    uint64_t x;
    do x = hx_rng_u64(g); while (x >= b->lim);
    uint64_t r = x - (uint64_t)(((unsigned __int128)x * b->m) >> 64) * b->n;
    return r >= b->n ? r - b->n : r;
}

void ev_bootstrap_means(const double *const *x, int k, int n, int reps, uint64_t seed, double *out)
{
    if (n <= 0 || reps <= 0 || k <= 0) return;
    /* item-major copy, at least 4 columns (zeros past k): one draw reads its values from one place; a resample's
     * draws first, then its sums, in registers (no call in the loop to spill them), each in draw order */
    int kt = k < 4 ? 4 : k;
    double *s = xcalloc((size_t)kt, sizeof *s), *xt = xcalloc((size_t)n * kt, sizeof *xt);
    uint32_t *d = xmalloc((size_t)n * sizeof *d);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) xt[(size_t)i * kt + j] = x[j][i];
    hx_rng g;
    hx_rng_seed(&g, seed);
    below b = below_init((uint64_t)n);
    for (int r = 0; r < reps; r++) {
        for (int i = 0; i < n; i++) d[i] = (uint32_t)below_draw(&g, &b);
        if (kt == 4) {
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int i = 0; i < n; i++) {
                const double *xd = xt + (size_t)d[i] * 4;
                s0 += xd[0], s1 += xd[1], s2 += xd[2], s3 += xd[3];
            }
            s[0] = s0, s[1] = s1, s[2] = s2, s[3] = s3;
        } else {
            for (int j = 0; j < k; j++) s[j] = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < k; j++) s[j] += xt[(size_t)d[i] * kt + j];
        }
        for (int j = 0; j < k; j++) out[(size_t)r * k + j] = s[j] / n;
    }
    free(s);
    free(xt);
    free(d);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void swap_d(double *v, int i, int j)
{
    double t = v[i];
    v[i] = v[j];
    v[j] = t;
}

static double median3(double a, double b, double c)
{
    if (a > b) { double t = a; a = b; b = t; }
    return c < a ? a : c > b ? b : c;
}

/* Hoare's selection: afterwards v[k] holds what a sort would put there, v[0..k) <= v[k] <= v(k..n). A three-way
 * partition around an element's value, so the many ties among replicates of 0/1 items cost nothing. */
static void select_nth(double *v, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        double p = median3(v[lo], v[lo + (hi - lo) / 2], v[hi]);
        int lt = lo, i = lo, gt = hi; /* [lo, lt) < p, [lt, i) == p, (gt, hi] > p */
        while (i <= gt) {
            if (v[i] < p) swap_d(v, lt++, i++);
            else if (v[i] > p) swap_d(v, i, gt--);
            else i++;
        }
        if (k < lt) hi = lt - 1;
        else if (k > gt) lo = gt + 1;
        else return;
    }
}

ev_ci ev_percentile(double *v, int reps, double level)
{
    ev_ci r = {0, 0};
    if (reps <= 0) return r;
    /* nearest-rank order statistics: the (1-level)/2 and (1+level)/2 quantiles */
    int lo = (int)floor((1 - level) / 2 * reps), hi = (int)ceil((1 + level) / 2 * reps) - 1;
    if (lo < 0) lo = 0;
    if (hi >= reps) hi = reps - 1;
    if (hi < lo) hi = lo;
    /* -0 and +0 compare equal, so which of them a sort puts at a rank depends on the algorithm: where a -0 occurs,
     * the sort this function has always used decides */
    int negzero = 0;
    for (int i = 0; i < reps && !negzero; i++) negzero = v[i] == 0 && signbit(v[i]);
    if (negzero) {
        qsort(v, (size_t)reps, sizeof *v, cmp_double);
    } else {
        select_nth(v, reps, hi);
        if (lo < hi) select_nth(v, hi, lo);
    }
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
