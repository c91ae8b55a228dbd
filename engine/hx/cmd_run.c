/* cmd_run.c - `hx run RECIPE`: plan, then execute every instance not in the store, recording the run. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "engine/hx/cli.h"
#include "engine/hx/commands.h"
#include "engine/hx/exec.h"
#include "engine/hx/slurm.h"
#include "engine/nn/engine.h"
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

static void on_change(void *ud, int i)
{
    run_state *R = ud;
    int st = R->res[i].state;
    if (st == HX_ST_RUNNING) return;
    R->done++;
    hx_progress_update(&R->prog, R->done, "%s %s", R->plan->inst[i].stage_name, hx_state_name(st));
    /* Executed and failed instances are worth a durable record at once; cache hits wait for the end. */
    if (st == HX_ST_EXECUTED || st == HX_ST_FAILED) save_record(R, "running");
}

/* The executor's options (--executor, --slurm-*, --detach), taken out of ARGV before the shared parser sees it. */
typedef struct run_executor {
    int slurm;
    int detach;
    hx_slurm_opts so;
} run_executor;

static int take_executor_args(int argc, char **argv, run_executor *x)
{
    static const char *const names[] = {"executor", "slurm-partition", "slurm-account", "slurm-opt", "detach"};
    int out = 1, local_given = 0;
    x->so.opts = xcalloc((size_t)argc + 1, sizeof *x->so.opts);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        size_t k = 0, n = sizeof names / sizeof *names;
        if (!strcmp(a, "--")) { /* positionals from here on */
            while (i < argc) argv[out++] = argv[i++];
            break;
        }
        for (; k < n; k++) {
            size_t l = strlen(names[k]);
            if (!strncmp(a, "--", 2) && !strncmp(a + 2, names[k], l) && (!a[2 + l] || a[2 + l] == '=')) break;
        }
        if (k == n) {
            argv[out++] = argv[i];
            continue;
        }
        const char *eq = strchr(a, '=');
        if (k == 4) { /* --detach */
            if (eq) die(HX_EXIT_USAGE, "hx run: --detach takes no value");
            x->detach = 1;
            continue;
        }
        if (eq) val = eq + 1;
        else if (i + 1 < argc) val = argv[++i];
        else die(HX_EXIT_USAGE, "hx run: %s needs a value", a);
        if (k == 0) {
            if (!strcmp(val, "slurm")) x->slurm = 1;
            else if (!strcmp(val, "local")) local_given = 1;
            else die(HX_EXIT_USAGE, "hx run: --executor %s: expected local or slurm", val);
        } else if (k == 1) {
            x->so.partition = val;
        } else if (k == 2) {
            x->so.account = val;
        } else {
            if (!strncmp(val, "--", 2)) val += 2;
            size_t nl = strcspn(val, "=");
            if (!nl || strspn(val, "abcdefghijklmnopqrstuvwxyz0123456789-") != nl)
                die(HX_EXIT_USAGE, "hx run: --slurm-opt %s: expected an sbatch option as NAME=VALUE or NAME "
                    "(e.g. --slurm-opt qos=high, --slurm-opt exclusive)", val);
            x->so.opts[x->so.n_opts++] = val;
        }
    }
    if (!x->slurm && (x->detach || x->so.partition || x->so.account || x->so.n_opts))
        die(HX_EXIT_USAGE, "hx run: --detach and --slurm-* go with --executor slurm%s",
            local_given ? " (not --executor local)" : "");
    argv[out] = NULL;
    return out;
}

static int default_threads(int jobs)
{
    const char *e = getenv("OMP_NUM_THREADS");
    long n = e && atol(e) > 0 ? atol(e) : sysconf(_SC_NPROCESSORS_ONLN);
    n = n / (jobs > 0 ? jobs : 1);
    return n < 1 ? 1 : (int)n;
}

int cmd_run(int argc, char **argv)
{
    run_executor x = {0};
    char **args = xcalloc((size_t)argc + 1, sizeof *args);
    memcpy(args, argv, (size_t)argc * sizeof *args);
    int nargs = take_executor_args(argc, args, &x);
    hx_cli c;
    hx_cli_parse(&c, nargs, args, "S store json strict verify device jobs threads recompute", 1, 1);
    hx_recipe r;
    hx_plan p;
    hx_cli_load(&c, &r, &p);
    hx_store s;
    hx_cli_open_store(&c, &s);

    hx_exec_opts o = {.jobs = c.jobs, .verify = c.verify, .recompute = c.recompute, .interrupted = &interrupted};
    if (x.slurm) {
        /* the GPUs are the nodes' (the submitting host may have none): cpu, or a GPU for each GPU kind */
        if (strcmp(c.device, "cpu") && strcmp(c.device, "auto") && strcmp(c.device, "cuda"))
            die(HX_EXIT_USAGE, "hx run --executor slurm: --device %s: expected cpu, auto or cuda (Slurm picks the GPU)",
                c.device);
        x.so.gpus = strcmp(c.device, "cpu") != 0;
        x.so.hx_binary = realpath("/proc/self/exe", NULL);
        if (!x.so.hx_binary) die(HX_EXIT_STORE, "hx run: cannot resolve this binary's path");
    } else {
        parse_device(c.device, &o);
    }
    o.threads = c.threads ? c.threads : default_threads(c.jobs);
    char *id = hx_store_new_run_id(&s);
    o.run_id = id;

    char *recipe_abs = realpath(c.recipe, NULL);
    char started[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *argv_json = json_array();
    for (int i = 0; i < argc; i++) json_array_append_new(argv_json, json_string(argv[i]));
    json_t *record = json_pack("{s:s,s:{s:s,s:s,s:O},s:O,s:o,s:s,s:s,s:i,s:i,s:b,s:{s:s,s:s,s:s}}", "run_id", id,
                               "recipe", "path", recipe_abs ? recipe_abs : c.recipe, "name", r.name, "files", r.files,
                               "overrides", r.overrides, "argv", argv_json, "started", started, "device", c.device,
                               "jobs", c.jobs, "threads", o.threads, "strict", c.strict, "hx", "version", HX_VERSION,
                               "commit", hx_build_commit(), "build", hx_build_flags());
    free(recipe_abs);
    json_t *rep = json_object_get(r.doc, "report");
    if (rep) json_object_set(record, "report", rep);
    json_object_set(record, "axes", p.axes);
    /* Who is running it: gc keeps every entry of a live run's plan; hx runs shows a vanished one as dead. */
    json_object_set_new(record, "process", hx_store_process_self());
    json_object_set_new(record, "executor", json_string(x.slurm ? "slurm" : "local"));
    json_t *slurm_rec = x.slurm ? json_object() : NULL;
    if (slurm_rec) json_object_set(record, "slurm", slurm_rec);

    hx_exec_result *res = xcalloc((size_t)p.n + 1, sizeof *res);
    run_state R = {.cli = &c, .store = &s, .plan = &p, .res = res, .record = record, .id = id, .t0 = hx_now()};
    o.on_change = on_change;
    o.ud = &R;
    save_record(&R, "running");

    struct sigaction sa = {0}, old, old_term;
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    sigaction(SIGTERM, &sa, &old_term);
    log_info("run %s: %s, %d stage instance%s, store %s%s", id, r.name, p.n, p.n == 1 ? "" : "s", s.root,
             x.slurm ? ", executor slurm" : "");
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
            if (c.json) printf("{\"run_id\":\"%s\",\"status\":\"running\",\"jobs\":%d}\n", id, n_jobs);
            else printf("run %s: %d slurm job%s submitted; follow with 'hx show %s' or 'hx runs', stop with 'hx cancel %s'\n",
                        id, n_jobs, n_jobs == 1 ? "" : "s", id, id);
            return HX_EXIT_OK;
        }
        failed = hx_slurm_wait(&p, &s, &o, slurm_rec, res);
    } else {
        o.engine = run_engine_open(o.threads, o.jobs);
        int engine_lost = 0;
        o.engine_lost = &engine_lost;
        failed = hx_exec_run(&p, &s, &o, res);
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
    if (c.json) {
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
    json_decref(record);
    json_decref(slurm_rec);
    free((char *)x.so.hx_binary);
    free(x.so.opts);
    free(args);
    free(id);
    hx_plan_release(&p);
    hx_recipe_release(&r);
    hx_store_release(&s);
    hx_cli_release(&c);
    if (interrupted) return HX_EXIT_INTERRUPTED;
    return store_error ? HX_EXIT_STORE : failed ? HX_EXIT_STAGE : HX_EXIT_OK;
}
