/* cmd_run.c - `hx run RECIPE`: plan, then execute every instance not in the store, recording the run. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "interp/estimate.h"
#include "interp/exec.h"
#include "interp/slurm.h"
#include "nn/engine.h"
#include "kernels/kernels.h"

/* SIGINT and SIGTERM: the first asks the stages to stop at a safe point, the second exits at once. */
static volatile int interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    if (interrupted) _exit(HX_EXIT_INTERRUPTED);
    interrupted = 1;
    static const char msg[] = "\nhx: interrupted, stopping at a safe point (Ctrl-C again to exit now)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
}

/*
 * The shared engine: models stay resident across the stages of this run (a teacher used by every arm is loaded
 * once). A cached model carries its own activation buffers, so it cannot serve two stages at the same time:
 * with --jobs > 1 each stage opens its own backend and loads what it needs (ctx->engine is NULL).
 */
static struct nn_engine *run_engine_open(int threads, int jobs)
{
    /* its backend opens on the device of the first stage that uses it (hx_stage_call: nn_engine_on) */
    return jobs > 1 ? NULL : nn_engine_new(NULL, threads);
}

static void run_engine_close(struct nn_engine *e)
{
    if (e) nn_engine_free(e);
}

#ifdef HX_CUDA
static void *warm_gpu(void *device)
{
    k_cuda_warm(*(const int *)device);
    return NULL;
}
#endif

/* Start making the CUDA context of the first GPU in a thread of its own when a GPU stage of P will execute (the
 * runtime's start-up on a cold machine is seconds: it overlaps the store checks and CPU stages). 1 if started. */
static int warm_start(const hx_plan *p, const hx_store *s, const hx_exec_opts *o, pthread_t *th)
{
#ifdef HX_CUDA
    if (o->n_gpus < 1 || o->accel) return 0;
    for (int i = 0; i < p->n; i++)
        if (p->inst[i].kind->needs_gpu && !hx_store_has(s, p->inst[i].key))
            return pthread_create(th, NULL, warm_gpu, (void *)&o->gpu_ids[0]) == 0;
#else
    (void)p, (void)s, (void)o, (void)th;
#endif
    return 0;
}

/* GPUs visible to this process (0 in a build without CUDA or on a machine without a GPU). */
static int count_gpus(void)
{
#ifdef HX_CUDA
    DIR *d = opendir("/proc/driver/nvidia/gpus");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    if (!n) n = k_cuda_device_count(); /* sandboxes (gVisor) may not show /proc/driver/nvidia */
    return n > HX_MAX_GPUS ? HX_MAX_GPUS : n;
#else
    return 0;
#endif
}

static const char *no_gpu_why(void)
{
#ifdef HX_CUDA
    return "no GPU found";
#else
    return "this hx was built without CUDA (nvcc was not found at build time)";
#endif
}

/* --device auto|cpu|cuda|cuda:N|guard -> the GPUs stages may use. */
static void parse_device(const char *dev, hx_exec_opts *o)
{
    int have = count_gpus();
    o->n_gpus = 0;
    if (!strcmp(dev, "cpu")) return;
    if (!strcmp(dev, "guard") || !strcmp(dev, "guard:bf16")) { /* tests: the GPU stages on the guard device */
        o->n_gpus = 1;
        o->accel = dev;
        return;
    }
    if (!strcmp(dev, "auto") || !strcmp(dev, "cuda")) {
        if (!have && !strcmp(dev, "cuda")) die(HX_EXIT_USAGE, "--device cuda: %s", no_gpu_why());
        for (int g = 0; g < have; g++) o->gpu_ids[o->n_gpus++] = g;
        return;
    }
    if (!strncmp(dev, "cuda:", 5)) {
        char *end;
        long n = strtol(dev + 5, &end, 10);
        if (!dev[5] || *end || n < 0) die(HX_EXIT_USAGE, "--device %s: expected cuda:N with N a GPU number", dev);
        if (n >= have) die(HX_EXIT_USAGE, "--device %s: %s", dev, have ? "no such GPU" : no_gpu_why());
        o->gpu_ids[o->n_gpus++] = (int)n;
        return;
    }
    die(HX_EXIT_USAGE, "--device %s: expected auto, cpu, cuda or cuda:N (guard for tests)", dev);
}

typedef struct run_state {
    const hx_cli *cli;
    const hx_store *store;
    const hx_plan *plan;
    hx_exec_result *res;
    json_t *record;
    const char *id;
    hx_progress prog;
    int done;
    double t0;
    /* the run's ETA: each instance's estimate (estimate.c), and the live ETA and rate of running ones */
    hx_estimate *est;
    double *live_eta;
    char (*rate)[48];
    int *state;
    pthread_mutex_t live_mu;
} run_state;

static json_t *stage_records(const run_state *R, int full)
{
    json_t *a = json_array();
    for (int i = 0; i < R->plan->n; i++) {
        const hx_instance *in = &R->plan->inst[i];
        const hx_exec_result *r = &R->res[i];
        json_t *o = json_pack("{s:s,s:O,s:s,s:s,s:o}", "stage", in->stage_name, "axes", in->axes, "key", in->key,
                              "state", hx_state_name(r->state), "seconds", hx_json_num(r->seconds));
        if (full) {
            json_object_set_new(o, "kind", json_string(in->kind->name));
            json_object_set_new(o, "kind_version", json_integer(in->kind->version));
            json_object_set(o, "with", in->with);
            json_object_set(o, "inputs", in->inputs);
            if (in->external) json_object_set(o, "external", in->external);
            if (in->run_with) json_object_set(o, "run_with", in->run_with); /* external paths resolved (exec-key) */
            if (r->device[0]) json_object_set_new(o, "device", json_string(r->device));
        }
        if (r->error) json_object_set_new(o, "error", json_string(r->error));
        json_array_append_new(a, o);
    }
    return a;
}

static void save_record(run_state *R, const char *status)
{
    json_object_set_new(R->record, "status", json_string(status));
    json_object_set_new(R->record, "seconds", hx_json_num(hx_now() - R->t0));
    json_object_set_new(R->record, "stages", stage_records(R, 1));
    if (hx_store_write_run(R->store, R->id, R->record) < 0) log_warn("run record: %s", hx_last_error());
}

/* From a stage's thread: its progress, for the run's ETA and rate. */
static void on_progress(void *ud, const hx_instance *in, const hx_progress *p)
{
    run_state *R = ud;
    int i = (int)(in - R->plan->inst);
    pthread_mutex_lock(&R->live_mu);
    R->live_eta[i] = p->eta;
    snprintf(R->rate[i], sizeof R->rate[i], "%.0f %s/s", p->rate_units, p->unit);
    pthread_mutex_unlock(&R->live_mu);
}

static void on_change(void *ud, int i)
{
    run_state *R = ud;
    int st = R->res[i].state, unknown;
    R->state[i] = st;
    R->done += st != HX_ST_RUNNING;
    /* the run's ETA from its stages' (the running ones' live ETA, the others' estimates); the rate is a stage's */
    pthread_mutex_lock(&R->live_mu);
    double eta = hx_estimate_left(R->plan, R->est, R->state, R->live_eta, R->cli->jobs, &unknown);
    char *name = hx_exec_instance_name(&R->plan->inst[i]), rate[48];
    snprintf(rate, sizeof rate, "%s", R->rate[i]);
    pthread_mutex_unlock(&R->live_mu);
    hx_progress_set_eta(&R->prog, unknown && eta <= 0 ? -1 : eta); /* "ETA ?" when nothing left has an estimate */
    char more[64] = "";
    if (unknown) snprintf(more, sizeof more, " (the ETA leaves out %d without an estimate)", unknown);
    hx_progress_update(&R->prog, R->done, "%s %s%s%s%s", name, hx_state_name(st), *rate && st == HX_ST_EXECUTED ? ", " : "",
                       st == HX_ST_EXECUTED ? rate : "", more);
    free(name);
    /* Started, executed and failed instances are worth a durable record at once (hx runs shows what runs); cache hits
     * wait for the end. */
    if (st == HX_ST_EXECUTED || st == HX_ST_FAILED || st == HX_ST_RUNNING) save_record(R, "running");
}

/* The executor's options (--executor, --slurm-*, --detach). */
typedef struct run_executor {
    int slurm;
    int detach;
    hx_slurm_opts so;
} run_executor;

static void executor_args(const hx_cli *c, run_executor *x)
{
    x->slurm = !strcmp(hx_cli_str(c, "executor"), "slurm");
    x->detach = hx_cli_given(c, "detach");
    x->so.partition = hx_cli_str(c, "slurm-partition");
    x->so.account = hx_cli_str(c, "slurm-account");
    x->so.opts = hx_cli_list(c, "slurm-opt", &x->so.n_opts);
    for (int i = 0; i < x->so.n_opts; i++) {
        const char *val = x->so.opts[i];
        if (!strncmp(val, "--", 2)) val += 2;
        size_t nl = strcspn(val, "=");
        if (!nl || strspn(val, "abcdefghijklmnopqrstuvwxyz0123456789-") != nl)
            die(HX_EXIT_USAGE, "hx run: --slurm-opt %s: expected an sbatch option as NAME=VALUE or NAME "
                "(e.g. --slurm-opt qos=high, --slurm-opt exclusive)", val);
        x->so.opts[i] = val;
    }
    if (!x->slurm && (x->detach || x->so.partition || x->so.account || x->so.n_opts))
        die(HX_EXIT_USAGE, "hx run: --detach and --slurm-* go with --executor slurm%s",
            hx_cli_given(c, "executor") ? " (not --executor local)" : "");
}

/* Seconds since this process started (the dynamic loader, the libraries' initialisers and main before cmd_run
 * count): /proc/self/stat's start time against /proc/uptime; 0 when they cannot be read. */
static double process_age(void)
{
    double up = 0, age = 0;
    unsigned long long start = 0;
    FILE *f = fopen("/proc/uptime", "r");
    if (f) {
        if (fscanf(f, "%lf", &up) != 1) up = 0;
        fclose(f);
    }
    char buf[1024];
    f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces: fields count from its end */
    for (int field = 2; p && *p && field < 22; p++)
        if (*p == ' ') field++;
    if (p && up > 0 && sscanf(p, "%llu", &start) == 1) age = up - (double)start / (double)sysconf(_SC_CLK_TCK);
    return age > 0 && age < 1e6 ? age : 0;
}

static int default_threads(int jobs)
{
    const char *e = getenv("OMP_NUM_THREADS");
    long n = e && atol(e) > 0 ? atol(e) : sysconf(_SC_NPROCESSORS_ONLN);
    n = n / (jobs > 0 ? jobs : 1);
    return n < 1 ? 1 : (int)n;
}

int cmd_run(hx_cli *c)
{
    run_executor x = {0};
    /* where the start-up time goes (issue 14 item 8): logged once the run begins */
    double t_origin = hx_now() - process_age(), t_main = hx_now();
    executor_args(c, &x);
    if (c->gpu_share > HX_MAX_JOBS)
        die(HX_EXIT_USAGE, "hx run: --gpu-share %d: at most %d stages share a GPU", c->gpu_share, HX_MAX_JOBS);
    hx_recipe r;
    hx_plan p;
    hx_cli_load(c, &r, &p);
    double t_plan = hx_now();
    hx_store s;
    hx_cli_open_store(c, &s);

    hx_exec_opts o = {.jobs = c->jobs, .verify = c->verify, .recompute = c->recompute, .interrupted = &interrupted,
                      .t_origin = t_origin};
    if (x.slurm) {
        /* the GPUs are the nodes' (the submitting host may have none): cpu, or a GPU for each GPU kind */
        if (strcmp(c->device, "cpu") && strcmp(c->device, "auto") && strcmp(c->device, "cuda"))
            die(HX_EXIT_USAGE, "hx run --executor slurm: --device %s: expected cpu, auto or cuda (Slurm picks the GPU)",
                c->device);
        x.so.gpus = strcmp(c->device, "cpu") != 0;
        x.so.hx_binary = realpath("/proc/self/exe", NULL);
        if (!x.so.hx_binary) die(HX_EXIT_STORE, "hx run: cannot resolve this binary's path");
    } else {
        parse_device(c->device, &o);
    }
    /* --gpu-share N: N GPU stages at once on each GPU; without --jobs, enough jobs to fill those slots */
    o.gpu_share = c->gpu_share;
    if (!c->jobs_given && c->gpu_share > 1 && o.n_gpus * c->gpu_share > o.jobs)
        o.jobs = o.n_gpus * c->gpu_share > HX_MAX_JOBS ? HX_MAX_JOBS : o.n_gpus * c->gpu_share;
    o.threads = c->threads ? c->threads : default_threads(o.jobs);
    char *id = hx_store_new_run_id(&s);
    o.run_id = id;

    char *recipe_abs = realpath(c->recipe, NULL);
    char started[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *argv_json = json_array();
    for (int i = 0; i < c->argc; i++) json_array_append_new(argv_json, json_string(c->argv[i]));
    json_t *record = json_pack("{s:s,s:{s:s,s:s,s:O},s:O,s:o,s:s,s:s,s:i,s:i,s:b,s:{s:s,s:s,s:s}}", "run_id", id,
                               "recipe", "path", recipe_abs ? recipe_abs : c->recipe, "name", r.name, "files", r.files,
                               "overrides", r.overrides, "argv", argv_json, "started", started, "device", c->device,
                               "jobs", o.jobs, "threads", o.threads, "strict", c->strict, "hx", "version", HX_VERSION,
                               "commit", hx_build_commit(), "build", hx_build_flags());
    free(recipe_abs);
    json_t *rep = json_object_get(r.doc, "report");
    if (rep) json_object_set(record, "report", rep);
    json_t *params = json_object_get(r.doc, "params"); /* after includes and -S: what `hx runs --metrics` compares */
    if (params) json_object_set(record, "params", params);
    json_object_set(record, "axes", p.axes);
    /* Who is running it: gc keeps every entry of a live run's plan; hx runs shows a vanished one as dead. */
    json_object_set_new(record, "process", hx_store_process_self());
    json_object_set_new(record, "executor", json_string(x.slurm ? "slurm" : "local"));
    json_t *slurm_rec = x.slurm ? json_object() : NULL;
    if (slurm_rec) json_object_set(record, "slurm", slurm_rec);

    hx_exec_result *res = xcalloc((size_t)p.n + 1, sizeof *res);
    run_state R = {.cli = c, .store = &s, .plan = &p, .res = res, .record = record, .id = id, .t0 = hx_now()};
    R.est = xcalloc((size_t)p.n + 1, sizeof *R.est);
    R.live_eta = xcalloc((size_t)p.n + 1, sizeof *R.live_eta);
    R.rate = xcalloc((size_t)p.n + 1, sizeof *R.rate);
    R.state = xcalloc((size_t)p.n + 1, sizeof *R.state);
    pthread_mutex_init(&R.live_mu, NULL);
    hx_estimator *estimator = hx_estimator_new(&s); /* the run's ETA, from earlier executions */
    hx_estimate_plan(estimator, &p, &s, R.est);
    hx_estimator_free(estimator);
    for (int i = 0; i < p.n; i++) R.live_eta[i] = -1;
    o.on_change = on_change;
    o.on_progress = on_progress;
    o.ud = &R;
    save_record(&R, "running");

    struct sigaction sa = {0}, old, old_term;
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    sigaction(SIGTERM, &sa, &old_term);
    if (o.gpu_share > 1) json_object_set_new(record, "gpu_share", json_integer(o.gpu_share));
    log_info("run %s: %s, %d stage instance%s, store %s%s", id, r.name, p.n, p.n == 1 ? "" : "s", s.root,
             x.slurm ? ", executor slurm" : "");
    log_info("start-up: %.2fs before hx run (loader, libraries), %.2fs recipe and plan, %.2fs store and run record",
             t_main - t_origin, t_plan - t_main, hx_now() - t_plan);
    hx_progress_begin(&R.prog, "run", p.n, "stage");
    int failed;
    if (x.slurm) {
        /* the record holds the plan before any job starts: each job reads its instance from it (hx exec-key) */
        if (hx_slurm_submit(&p, &s, &o, &x.so, slurm_rec, res) < 0) {
            save_record(&R, "failed");
            die(HX_EXIT_USAGE, "%s", hx_last_error());
        }
        save_record(&R, "running");
        int n_jobs = (int)json_object_size(json_object_get(slurm_rec, "jobs"));
        if (x.detach && n_jobs > 0) { /* (with nothing to run, it ends here and now, as without --detach) */
            hx_progress_end(&R.prog);
            if (c->json) printf("{\"run_id\":\"%s\",\"status\":\"running\",\"jobs\":%d}\n", id, n_jobs);
            else printf("run %s: %d slurm job%s submitted; follow with 'hx show %s' or 'hx runs', stop with 'hx cancel %s'\n",
                        id, n_jobs, n_jobs == 1 ? "" : "s", id, id);
            return HX_EXIT_OK;
        }
        failed = hx_slurm_wait(&p, &s, &o, slurm_rec, res);
    } else {
        pthread_t warm;
        int warming = warm_start(&p, &s, &o, &warm);
        o.engine = run_engine_open(o.threads, o.jobs);
        int engine_lost = 0;
        o.engine_lost = &engine_lost;
        failed = hx_exec_run(&p, &s, &o, res);
        if (warming) pthread_join(warm, NULL);
        if (!engine_lost) run_engine_close(o.engine); /* a lost engine's state is unknown: left to the exit */
    }
    hx_progress_end(&R.prog);
    sigaction(SIGINT, &old, NULL);
    sigaction(SIGTERM, &old_term, NULL);

    const char *status = interrupted ? "interrupted" : failed ? "failed" : "ok";
    save_record(&R, status);

    int n_exec = 0, n_cached = 0, n_failed = 0, n_skipped = 0, store_error = 0;
    for (int i = 0; i < p.n; i++) {
        store_error |= res[i].store_error;
        n_exec += res[i].state == HX_ST_EXECUTED;
        n_cached += res[i].state == HX_ST_CACHED;
        n_failed += res[i].state == HX_ST_FAILED;
        n_skipped += res[i].state == HX_ST_SKIPPED;
    }
    if (c->json) {
        json_t *out = json_pack("{s:s,s:s,s:o}", "run_id", id, "status", status, "stages", stage_records(&R, 0));
        char *t = json_dumps(out, JSON_COMPACT);
        printf("%s\n", t);
        free(t);
        json_decref(out);
    } else {
        for (int i = 0; i < p.n; i++) {
            char *label = hx_plan_axes_label(p.inst[i].axes);
            printf("%-9s %-16s %-32s %.12s %7.2fs%s%s\n", hx_state_name(res[i].state), p.inst[i].stage_name, label,
                   p.inst[i].key, res[i].seconds, res[i].error ? "  " : "", res[i].error ? res[i].error : "");
            free(label);
        }
        printf("run %s: %s (%d executed, %d cached, %d failed, %d skipped) in %.2fs\n", id, status, n_exec, n_cached,
               n_failed, n_skipped, hx_now() - R.t0);
    }
    fflush(stdout);
    for (int i = 0; i < p.n; i++) free(res[i].error);
    free(res);
    free(R.est);
    free(R.live_eta);
    free(R.rate);
    free(R.state);
    pthread_mutex_destroy(&R.live_mu);
    json_decref(record);
    json_decref(slurm_rec);
    free((char *)x.so.hx_binary);
    free(x.so.opts);
    free(id);
    hx_plan_release(&p);
    hx_recipe_release(&r);
    hx_store_release(&s);
    if (interrupted) return HX_EXIT_INTERRUPTED;
    return store_error ? HX_EXIT_STORE : failed ? HX_EXIT_STAGE : HX_EXIT_OK;
}
