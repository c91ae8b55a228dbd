/* stats.h - statistics of per-item correctness: Wilson intervals, paired bootstrap, McNemar, Kendall's tau. */
#ifndef EV_STATS_H
#define EV_STATS_H

#include <stdint.h>

#define EV_Z95 1.959963984540054 /* two-sided 95% normal quantile */

typedef struct ev_ci {
    double lo, hi;
} ev_ci;

/* Wilson score interval of a proportion k/n at normal quantile z (n = 0: [0, 1]). */
ev_ci ev_wilson(int k, int n, double z);

/*
 * Percentile bootstrap interval (level, e.g. 0.95) of mean(a[i] - b[i]) over n paired items, resampling
 * items with replacement `reps` times from hx_rng seeded with `seed` (deterministic). b may be NULL
 * (interval of mean(a)). n = 0: [0, 0].
 */
ev_ci ev_bootstrap_paired(const double *a, const double *b, int n, int reps, uint64_t seed, double level);

/*
 * McNemar's test on discordant pairs: b = items right in the first and wrong in the second, c = the reverse.
 * Exact two-sided binomial p-value: min(1, 2 * P(X <= min(b, c))), X ~ Bin(b + c, 1/2); 1 when b + c = 0.
 */
double ev_mcnemar_exact(int b, int c);
/* The chi-square form with continuity correction, (|b - c| - 1)^2 / (b + c), and its p-value (1 df). */
double ev_mcnemar_chi2(int b, int c, double *p);

/* Kendall's tau-b between two score vectors of n arms (ties allowed); 0 when undefined (n < 2 or all tied). */
double ev_kendall_tau(const double *x, const double *y, int n);

#endif
