/* exec.h - the executor: runs a plan's instances in topological order, --jobs at a time, at most once. */
#ifndef HX_EXEC_H
#define HX_EXEC_H

#include "engine/hx/plan.h"
#include "engine/hx/store.h"

typedef enum {
    HX_ST_PENDING,
    HX_ST_RUNNING,
    HX_ST_CACHED,   /* in the store and intact */
    HX_ST_EXECUTED, /* ran in this process and was committed */
    HX_ST_FAILED,   /* ran and failed (or could not be committed) */
    HX_ST_SKIPPED,  /* not run: an input failed, or the run was interrupted first */
} hx_state;
const char *hx_state_name(int state); /* "cached", "executed", ... */

typedef struct hx_exec_result {
    int state;
    double seconds;   /* wall time of this instance in this run */
    char *error;      /* why it failed or was skipped (xmalloc'd), or NULL */
    char device[32];  /* where it ran */
    int store_error;  /* the failure was the store's (lock, commit), not the stage's */
} hx_exec_result;

typedef struct hx_exec_opts {
    int jobs;                  /* instances run concurrently (>= 1) */
    int threads;               /* CPU threads given to each stage */
    int recompute;             /* hx run --recompute: activation recomputation in training stages */
    int verify;                /* re-hash every cached entry used (hx run --verify) */
    int n_gpus;                /* GPUs to share among needs_gpu stages (0: everything on the CPU) */
    int gpu_ids[16];
    struct nn_engine *engine;  /* shared engine, may be NULL */
    volatile int *interrupted; /* set by SIGINT */
    const char *run_id;
    /* Called, serialised, whenever an instance changes state (run records, progress). */
    void (*on_change)(void *ud, int inst);
    void *ud;
} hx_exec_opts;

/* Execute P against S; RES has p->n entries. Returns 0 if no instance failed, 1 otherwise. */
int hx_exec_run(const hx_plan *p, const hx_store *s, const hx_exec_opts *o, hx_exec_result *res);

/*
 * Execute one instance outside a plan's scheduler (the executor's workers, hx exec-key): take the key's lock
 * (waiting), call it cached if the store has it intact, else run it through the protected call and commit.
 * INPUT_KEYS holds the key bound to each of in->roles (those entries must be in the store). R gets the seconds,
 * device and error; returns the final state (HX_ST_CACHED, HX_ST_EXECUTED or HX_ST_FAILED).
 */
int hx_exec_one(const hx_store *s, const hx_exec_opts *o, const hx_instance *in, const char *const *input_keys,
                const char *device, hx_exec_result *r);

/* Build facts recorded in manifests (buildinfo.c). */
const char *hx_build_commit(void);
const char *hx_build_flags(void);

#endif
