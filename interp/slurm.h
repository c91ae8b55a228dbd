/* slurm.h - the Slurm executor: one sbatch job per uncached instance over a shared store (docs/cluster.md). */
#ifndef HX_SLURM_H
#define HX_SLURM_H

#include <jansson.h>
#include "interp/exec.h"
#include "interp/plan.h"
#include "interp/recipe.h"
#include "interp/store.h"

/* `hx run --executor slurm` options. */
typedef struct hx_slurm_opts {
    const char *partition;  /* --slurm-partition, or NULL: the cluster's default */
    const char *account;    /* --slurm-account, or NULL */
    const char **opts;      /* --slurm-opt K=V (or K): passed to sbatch as --K=V */
    int n_opts;
    int gpus;               /* 0 (--device cpu): GPU kinds run on the nodes' CPUs and request no GPU */
    const char *hx_binary;  /* absolute path of the hx the jobs run (this binary; the same path on every node) */
} hx_slurm_opts;

/*
 * What one instance asks of the scheduler: the kind's defaults (by whether it needs a GPU), overridden by
 * the recipe's `stages.NAME.resources` ({cpus, gpus, mem, time}; docs/recipes.md).
 */
typedef struct hx_resources {
    int cpus;           /* --cpus-per-task; also the stage's --threads */
    int gpus;           /* --gres=gpu:N (0: none) */
    long long mem_mb;   /* --mem, MiB */
    char time[32];      /* --time as Slurm spells it ("" : the partition's default) */
} hx_resources;

/* Resources of IN (of recipe R); with_gpus 0 drops GPU requests (--device cpu). 0, or -1 + error(file:line). */
int hx_resources_of(const hx_recipe *r, const hx_instance *in, int with_gpus, hx_resources *out);

/*
 * The sbatch command line of one job, NULL-terminated, every string xmalloc'd (free with hx_slurm_argv_free).
 * LOG_BASE gets .out and .err and its directory is the job's working directory; DEPENDENCY is "afterok:1:2" or
 * NULL; SCRIPT is the job script's path.
 */
char **hx_slurm_sbatch_argv(const hx_slurm_opts *so, const hx_resources *res, const char *job_name,
                            const char *log_base, const char *dependency, const char *script);
void hx_slurm_argv_free(char **argv);

/*
 * Submit every instance of P that is not in S (intact) as one job running `hx exec-key KEY RUN`, in plan
 * (topological) order, each with afterok dependencies on its inputs' jobs. The run record
 * runs/<o->run_id>/run.json must already hold the plan's stages: the jobs read their instance from it.
 * RES: cached instances get HX_ST_CACHED, submitted ones stay HX_ST_PENDING. SLURM_REC ({} from the caller,
 * stored as the record's "slurm") gets {partition, account, opts, jobs: {key: job id}}. A failed sbatch
 * cancels the jobs already submitted. Returns 0, or -1 + error.
 */
int hx_slurm_submit(const hx_plan *p, const hx_store *s, const hx_exec_opts *o, const hx_slurm_opts *so,
                    json_t *slurm_rec, hx_exec_result *res);

/*
 * Follow the jobs of SLURM_REC (from hx_slurm_submit) until every instance is final, calling o->on_change on
 * each change. A failed job's stderr tail goes to the log and into its error. *o->interrupted (Ctrl-C)
 * cancels the jobs still queued or running. Returns 0 if none failed, 1 otherwise.
 */
int hx_slurm_wait(const hx_plan *p, const hx_store *s, const hx_exec_opts *o, const json_t *slurm_rec,
                  hx_exec_result *res);

/* A Slurm run's record (hx runs, hx show, after --detach) brought up to date from its jobs: stage states,
 * errors, seconds and, once all are final, its status. Returns 1 if RUN changed, 0 if not, -1 + error. */
int hx_slurm_refresh(const hx_store *s, json_t *run);

/* scancel the jobs of RUN (a record with "slurm") that are not final; the record is refreshed and, when
 * any job was cancelled, its status set to "cancelled". Returns the number of jobs cancelled, or -1 + error. */
int hx_slurm_cancel(const hx_store *s, json_t *run);

/* exec-key's report of one job: runs/<run_id>/slurm/<key>.json {state, seconds, device, host, job, error}. */
int hx_slurm_write_outcome(const hx_store *s, const char *run_id, const char *key, int state,
                           const hx_exec_result *r);

/* runs/<run_id>/slurm/<key><ext> (xmalloc'd): the job's script (.sh), logs (.out, .err) and outcome (.json). */
char *hx_slurm_job_path(const hx_store *s, const char *run_id, const char *key, const char *ext);

#endif
