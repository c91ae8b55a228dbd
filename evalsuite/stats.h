/* stats.h - statistics of per-item correctness: Wilson intervals, paired bootstrap (intervals, p-values), McNemar,
 * Holm's correction, Kendall's tau-b. Formulas and their use: docs/eval.md "Statistics". */
#ifndef EV_STATS_H
#define EV_STATS_H

#include <stdint.h>

#define EV_Z95 1.959963984540054 /* two-sided 95% normal quantile */

typedef struct ev_ci {
    double lo, hi;
} ev_ci;

/* Wilson score interval of a proportion k/n at normal quantile z (n = 0: [0, 1]). */
ev_ci ev_wilson(int k, int n, double z);

/* The seed of a named bootstrap stream: FNV-1a of "a/b" over seed, so each comparison resamples on its own stream
 * whatever else is computed before it. */
uint64_t ev_stream_seed(uint64_t seed, const char *a, const char *b);

/*
 * The paired bootstrap: `reps` resamples of n items with replacement, each item drawn by hx_rng_below from one
 * generator seeded with `seed` (n draws per resample, resample after resample: deterministic), the SAME resample
 * for the k per-item vectors x[0..k-1]. out[r * k + j] = mean of x[j] over resample r. n = 0 or reps = 0: nothing.
 */
void ev_bootstrap_means(const double *const *x, int k, int n, int reps, uint64_t seed, double *out);

/*
 * Percentile interval of the replicates v[0..reps) at `level` (e.g. 0.95): the floor((1-level)/2 * reps)-th and the
 * (ceil((1+level)/2 * reps) - 1)-th order statistics (0-based), found by selection in O(reps); reorders v.
 * Infinities order at the ends and come back as an infinite endpoint (an unbounded side). v must hold no NaN.
 * reps = 0: [0, 0].
 */
ev_ci ev_percentile(double *v, int reps, double level);

/*
 * Two-sided bootstrap p-value of "the statistic is 0" from its replicates (the percentile test, with the +1
 * correction so a p-value is never 0): p = min(1, 2 * min(1 + #{v <= 0}, 1 + #{v >= 0}) / (reps + 1)).
 * It is below 0.05 about when 0 is outside the 95% percentile interval; its floor is 2 / (reps + 1).
 */
double ev_bootstrap_p(const double *v, int reps);

/* Percentile interval (level) of mean(a[i] - b[i]) over n paired items, on ev_bootstrap_means' stream; b may be
 * NULL (interval of mean(a)). n = 0: [0, 0]. */
ev_ci ev_bootstrap_paired(const double *a, const double *b, int n, int reps, uint64_t seed, double level);

/*
 * McNemar's test on discordant pairs: b = items right in the first and wrong in the second, c = the reverse.
 * Exact two-sided binomial p-value: min(1, 2 * P(X <= min(b, c))), X ~ Bin(b + c, 1/2); 1 when b + c = 0.
 */
double ev_mcnemar_exact(int b, int c);
/* The chi-square form with continuity correction, (|b - c| - 1)^2 / (b + c), and its p-value (1 df). */
double ev_mcnemar_chi2(int b, int c, double *p);

/* The two-sided 95% quantile of Student's t with df degrees of freedom (df >= 1; a table to df 30, then the
 * Cornish-Fisher expansion in 1/df, within 1e-4 of the exact value). */
double ev_t95(int df);

/*
 * The mean over k seeds of a statistic that is a mean over n items, with an interval that includes seed variance
 * (docs/eval.md "Seeds"). v[s * n + i]: item i's value under seed s (the same n items under every seed).
 *   theta_s = mean_i v[s,i], mean = mean_s theta_s, sd_seed = the sample sd of theta_s (k - 1 in the denominator);
 *   se_item = the sample sd over items of vbar_i = mean_s v[s,i], over sqrt(n)  (item sampling, seeds averaged);
 *   se = sqrt((t95(k-1) / z95)^2 * sd_seed^2 / k + se_item^2);  ci = mean -+ z95 * se;
 *   p = 2 (1 - Phi(|mean| / se)), the test of "the statistic is 0" that agrees with the interval (se = 0: p = 1 when
 *   mean = 0, else 0).
 * k >= 2, n >= 2.
 */
typedef struct ev_seedstat {
    double mean, lo, hi, p;
    double sd_seed, se_item, se;
} ev_seedstat;
ev_seedstat ev_seed_mean(const double *v, int k, int n);

/* Holm's step-down adjustment of m p-values: with p sorted ascending p_(1) <= .. <= p_(m),
 * adj_(i) = min(1, max_{j <= i} (m - j + 1) * p_(j)); adj[] in the order of p[]. Ties keep their order. */
void ev_holm(const double *p, int m, double *adj);

/*
 * Kendall's tau-b between two score vectors of n arms (ties allowed):
 * (concordant - discordant) / sqrt((n0 - ties_x) * (n0 - ties_y)), n0 = n(n-1)/2.
 * Returns 1 and sets *tau when it is defined, 0 when it is not (n < 2, or either vector all tied).
 */
int ev_kendall_tau(const double *x, const double *y, int n, double *tau);

#endif
