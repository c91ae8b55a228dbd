/* exec.h - the executor: runs a plan's instances in topological order, --jobs at a time (--gpu-share per GPU), at
 * most once. */
#ifndef HX_EXEC_H
#define HX_EXEC_H

#include "interp/plan.h"
#include "interp/store.h"

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

/* The most GPUs one hx process shares among its stages (the slot table below; more are not used). */
#define HX_MAX_GPUS 16
/* The most instances run at once (--jobs), and so the most GPU stages sharing one GPU (--gpu-share). */
#define HX_MAX_JOBS 64

typedef struct hx_exec_opts {
    int jobs;                  /* instances run concurrently (>= 1) */
    int threads;               /* CPU threads given to each stage */
    int recompute;             /* hx run --recompute: activation recomputation in training stages */
    int verify;                /* re-hash every cached entry used (hx run --verify) */
    int n_gpus;                /* GPUs to share among needs_gpu stages (0: everything on the CPU) */
    int gpu_share;             /* needs_gpu stages run at once on one GPU (--gpu-share; < 1 counts as 1) */
    int gpu_ids[HX_MAX_GPUS];  /* CUDA device index of each GPU slot */
    const char *accel;         /* NULL: GPU slot i is cuda:<gpu_ids[i]>; "guard"/"guard:bf16": one slot on the
                                * guard device (tests of the device logic on a CPU machine) */
    struct nn_engine *engine;  /* shared engine, may be NULL */
    volatile int *interrupted; /* set by SIGINT or SIGTERM */
    int *engine_lost;          /* set to 1 when a stage ran out of memory holding the shared engine (may be NULL) */
    const char *run_id;
    const char *binary_digest; /* --strict: the binary's digest, recorded in manifests (hx_exec_run sets it) */
    double t_origin;           /* hx_now() at process start: "executing" lines say how long after it (0: not said) */
    /* Called, serialised, whenever an instance changes state (run records, progress). */
    void (*on_change)(void *ud, int inst);
    /* Called from the stage's thread each time the stage prints its progress (not serialised; may be NULL). */
    void (*on_progress)(void *ud, const hx_instance *in, const struct hx_progress *p);
    void *ud;
} hx_exec_opts;

/* Execute P against S; RES has p->n entries. Returns 0 if no instance failed, 1 otherwise. */
int hx_exec_run(const hx_plan *p, const hx_store *s, const hx_exec_opts *o, hx_exec_result *res);

/* Why instance I's store entry is stale although its key matches: an input now has other content than
 * the digest its manifest recorded (xmalloc'd reason), or NULL. Used by the executor, hx plan and hx why. */
char *hx_exec_stale_input(const hx_plan *p, const hx_store *s, int i);
/*
 * Execute one instance outside a plan's scheduler (the executor's workers, hx exec-key): take the key's lock
 * (waiting), call it cached if the store has it intact, else run it through the protected call and commit.
 * INPUT_KEYS holds the key bound to each of in->roles (those entries must be in the store). R gets the seconds,
 * device and error; returns the final state (HX_ST_CACHED, HX_ST_EXECUTED or HX_ST_FAILED). Every input is pinned
 * while the stage may read it and its content digest recorded; a cached entry whose input now has other content is
 * stale. FULL_VERIFY: re-hash a cached entry in full (a stage of this run is about to read it).
 */
int hx_exec_one(const hx_store *s, const hx_exec_opts *o, const hx_instance *in, const char *const *input_keys,
                const char *device, int full_verify, hx_exec_result *r);

/* The instance's name in logs and live records: "STAGE" or "STAGE[axis=value,...]" (xmalloc'd). */
char *hx_exec_instance_name(const hx_instance *in);

/* Build facts recorded in manifests (buildinfo.c). */
const char *hx_build_commit(void);
const char *hx_build_flags(void);

#endif
