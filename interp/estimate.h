/* estimate.h - wall-time estimates of a plan's instances from earlier executions recorded in the store's manifests
 * (`hx plan`'s times and totals, `hx run`'s ETA). */
#ifndef HX_ESTIMATE_H
#define HX_ESTIMATE_H

#include "interp/plan.h"
#include "interp/store.h"

/*
 * "The same size": the same kind, the same `with` except the fields that change values but not the amount of work
 * (seed, learning-rate schedule, logging and checkpoint intervals: not_size in estimate.c), the same external
 * inputs' content, and inputs of the same shape (an input's shape leaves out its own steps/tokens: a model trained
 * longer is no bigger). An instance of the same shape but other steps (or tokens) is scaled linearly in them.
 */
typedef struct hx_estimate {
    double seconds;  /* the estimate; 0 for an instance in the store; < 0: none */
    char how[200];   /* "as 3af1536cf199 on cpu", "4 -> 8 steps from 3af1536cf199 on cpu (0.21s)",
                      * "no earlier execution of kind t_slow", "no earlier execution of t_slow at this size" */
} hx_estimate;

typedef struct hx_estimator hx_estimator; /* the store's executions, indexed by size */

/* Reads every manifest of the store once. NULL never: an unreadable manifest is left out. */
hx_estimator *hx_estimator_new(const hx_store *s);
void hx_estimator_free(hx_estimator *e);

/* An estimate for every instance of P (EST gets p->n): 0 for those in the store (and not stale), else from the newest execution of
 * the same size, or scaled from the newest of the same shape, or none (seconds < 0) with the reason. */
void hx_estimate_plan(hx_estimator *e, const hx_plan *p, const hx_store *s, hx_estimate *est);

/*
 * Totals of SECS (p->n seconds of work left per instance, < 0: unknown, counted as 0 and in *unknown): the serial
 * sum, and the wall time with JOBS workers taking ready instances in plan order as hx run does (exec.c), which is
 * at least the critical path.
 */
void hx_estimate_totals(const hx_plan *p, const double *secs, int jobs, double *serial, double *wall, int *unknown);

/*
 * The wall time left of a run in progress (hx run's ETA): STATE (p->n hx_state values, exec.h) says what is done;
 * a running instance counts its live ETA (LIVE[i] >= 0, from its progress) else its estimate, a pending one its
 * estimate; totalled with JOBS workers as hx_estimate_totals does. *unknown: instances left without an estimate.
 */
double hx_estimate_left(const hx_plan *p, const hx_estimate *est, const int *state, const double *live, int jobs,
                        int *unknown);

#endif
