/* exec.c - runs stage instances: per-key lock, cache check, protected call, atomic commit; --jobs threads, GPU slots. */
#include "interp/exec.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "interp/canon.h"

const char *hx_state_name(int st)
{
    static const char *n[] = {"pending", "running", "cached", "executed", "failed", "skipped"};
    return st >= 0 && st <= HX_ST_SKIPPED ? n[st] : "?";
}

typedef struct sched {
    const hx_plan *p;
    const hx_store *s;
    const hx_exec_opts *o;
    hx_exec_result *res;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int finished;           /* instances in a final state */
    int gpu_busy[HX_MAX_GPUS]; /* needs_gpu instances running on each GPU slot (at most o->gpu_share) */
    int any_failed;
} sched;

static void iso_now(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void set_error(hx_exec_result *r, const char *msg)
{
    free(r->error);
    r->error = msg ? xstrdup(msg) : NULL;
}

static void event(const char *name, const hx_instance *in, const hx_exec_result *r)
{
    if (!hx_log_is_json()) return;
    json_t *o = json_pack("{s:s,s:O,s:s,s:s,s:o}", "stage", in->stage_name, "axes", in->axes, "key", in->key, "state",
                          hx_state_name(r->state), "seconds", hx_json_num(r->seconds));
    if (r->error) json_object_set_new(o, "error", json_string(r->error));
    char *t = json_dumps(o, JSON_COMPACT);
    size_t n = strlen(t);
    t[n - 1] = 0; /* drop the closing brace: hx_log_event wants the body */
    hx_log_event(name, t + 1);
    free(t);
    json_decref(o);
}

/* Execute IN (its lock held, known not to be in the store); INPUT_KEYS are the keys bound to its roles. */
static int execute(const hx_store *s, const hx_exec_opts *o, const hx_instance *in, const char *const *input_keys,
                   const char *device)
{
    char *out_dir = NULL, *ckpt_dir = NULL;
    if (hx_store_begin(s, in->key, &out_dir, &ckpt_dir) < 0) return -2;
    const char **dirs = xcalloc((size_t)in->n_inputs + 1, sizeof *dirs);
    const char **keys = xcalloc((size_t)in->n_inputs + 1, sizeof *keys);
    hx_lock *pins = xcalloc((size_t)in->n_inputs + 1, sizeof *pins);
    json_t *digests = json_object();
    int rc = 0;
    /* Pin every input for as long as the stage may read it (gc and repairs leave pinned entries alone), then
     * record the content each one has now: a dependent whose input later changes is stale. */
    for (int j = 0; j < in->n_inputs; j++) {
        keys[j] = input_keys[j];
        dirs[j] = hx_store_entry_dir(s, keys[j]);
        pins[j].fd = -1;
        char hex[65];
        if (rc == 0 && hx_store_pin(s, keys[j], &pins[j]) < 0) rc = -2;
        else if (rc == 0 && !hx_store_has(s, keys[j]))
            rc = -2, error("stage '%s': input '%s' (entry %.12s) left the store before the stage could read it "
                           "(removed by hx gc or by hand?)\nhint: run again; it will be executed first",
                           in->stage_name, in->roles[j], keys[j]);
        else if (rc == 0 && hx_store_content_digest(s, keys[j], hex) < 0) rc = -2;
        else if (rc == 0) json_object_set_new(digests, in->roles[j], json_string(hex));
    }
    json_t *metrics = json_object();
    hx_stage_ctx ctx = {
        .stage_name = in->stage_name,
        .key = in->key,
        .with = in->run_with ? in->run_with : in->with,
        .out_dir = out_dir,
        .ckpt_dir = ckpt_dir,
        .n_inputs = in->n_inputs,
        .input_roles = in->roles,
        .input_dirs = dirs,
        .input_keys = keys,
        .engine = o->engine_lost && *o->engine_lost ? NULL : o->engine,
        .device = device,
        .threads = o->threads,
        .recompute = o->recompute,
        .metrics = metrics,
        .interrupted = o->interrupted,
    };
    char started[32];
    iso_now(started, sizeof started);
    double t0 = hx_now();
    if (rc == 0) rc = hx_stage_call(in->kind, &ctx);
    double secs = hx_now() - t0;
    if (ctx.out_of_memory && ctx.engine) {
        /* The stage was abandoned mid-way: whatever it was doing to the shared engine is unknowable. Later
         * stages open their own backends; the engine is neither used nor freed again. */
        if (o->engine_lost) *o->engine_lost = 1;
        log_warn("stage '%s' ran out of memory: the shared engine is dropped; later stages load their own models",
                 in->stage_name);
    }
    if (rc == 0) {
        char host[256] = "?";
        gethostname(host, sizeof host - 1);
        json_t *m = json_pack("{s:i,s:s,s:s,s:s,s:i,s:O,s:O,s:O,s:s,s:o,s:s,s:s,s:i,s:s,s:s?,s:O}",
                              "hx_manifest", 1, "key", in->key, "stage", in->stage_name, "kind", in->kind->name,
                              "kind_version", in->kind->version, "axes", in->axes, "with", in->with, "inputs",
                              in->inputs, "status", "ok", "seconds", hx_json_num(secs), "started", started, "device", device,
                              "threads", o->threads, "host", host, "run_id", o->run_id, "metrics", metrics);
        json_object_set_new(m, "hx", json_pack("{s:s,s:s,s:s}", "version", HX_VERSION, "commit", hx_build_commit(),
                                               "build", hx_build_flags()));
        json_t *env = hx_stage_env(); /* the kernel knobs set (HX_KDA_*, HX_CUDA_*) */
        if (env) json_object_set_new(m, "env", env);
        json_object_set(m, "input_digests", digests);
        if (in->external && json_object_size(in->external)) json_object_set(m, "external", in->external);
        if (o->binary_digest) json_object_set_new(m, "hx_binary", json_string(o->binary_digest));
        if (hx_store_commit(s, in->key, m) < 0) {
            error_prefix("stage '%s': commit", in->stage_name);
            rc = -2;
        }
        json_decref(m);
    }
    for (int j = 0; j < in->n_inputs; j++) {
        hx_store_unlock(&pins[j]);
        free((char *)dirs[j]);
    }
    free(pins);
    free(dirs);
    free(keys);
    json_decref(digests);
    json_decref(metrics);
    free(out_dir);
    free(ckpt_dir);
    return rc;
}

/* Does a stage of this plan read instance I's entry in this run (a dependent not in the store)? */
static int will_be_read(const sched *S, int i)
{
    const hx_plan *p = S->p;
    for (int d = 0; d < p->n; d++)
        for (int j = 0; j < p->inst[d].n_inputs; j++)
            if (p->inst[d].input_inst[j] == i && !hx_store_has(S->s, p->inst[d].key)) return 1;
    return 0;
}

/* Why IN's entry is stale although its key matches: an input (INPUT_KEYS, bound to its roles) now has other
 * content than the digest its manifest recorded (xmalloc'd reason), or NULL. */
static char *stale_input(const hx_store *s, const hx_instance *in, const char *const *input_keys)
{
    json_t *m = hx_store_manifest(s, in->key);
    json_t *rec = json_object_get(m, "input_digests");
    char *why = NULL;
    /* Entries made before manifests recorded input digests have nothing to compare. */
    for (int j = 0; rec && j < in->n_inputs && !why; j++) {
        const char *was = json_string_value(json_object_get(rec, in->roles[j]));
        char now[65];
        if (!was || !hx_store_has(s, input_keys[j]) || hx_store_content_digest(s, input_keys[j], now) < 0) continue;
        if (strcmp(was, now)) {
            json_t *src = hx_store_manifest(s, input_keys[j]);
            const char *stage = json_string_value(json_object_get(src, "stage"));
            why = xstrfmt("input '%s' (stage %s, key %.12s) has other content than when this entry was computed "
                          "(digest %.12s, was %.12s)", in->roles[j], stage ? stage : "?", input_keys[j], now, was);
            json_decref(src);
        }
    }
    json_decref(m);
    hx_clear_error();
    return why;
}

char *hx_exec_instance_name(const hx_instance *in)
{
    char *label = hx_plan_axes_label(in->axes), *name = xstrfmt("%s%s%s%s", in->stage_name, *label ? "[" : "", label,
                                                                 *label ? "]" : "");
    free(label);
    return name;
}

/* The live record of a stage's progress (partial/<key>/progress.json), what `hx runs` shows of a running run. */
typedef struct live {
    const hx_store *s;
    const hx_exec_opts *o;
    const hx_instance *in;
    const char *name;
    double last; /* when it was last written */
} live;

#define LIVE_EVERY 2.0 /* seconds between writes of a live record */

static void live_progress(void *ud, const hx_progress *p, int final)
{
    live *L = ud;
    if (L->o->on_progress) L->o->on_progress(L->o->ud, L->in, p);
    double now = hx_now();
    if (!final && now - L->last < LIVE_EVERY) return;
    L->last = now;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:s,s:b,s:o}", "instance", L->name, "label", p->label, "unit",
                          p->unit, "done", hx_json_num(p->done), "total", hx_json_num(p->total), "rate",
                          hx_json_num(p->rate_units), "eta_s", final || p->eta < 0 ? json_null() : hx_json_num(p->eta),
                          "extra", p->extra, "final", final, "updated", hx_json_num(ts.tv_sec + ts.tv_nsec * 1e-9));
    char *t = json_dumps(j, JSON_COMPACT), *path = hx_store_live_path(L->s, L->in->key);
    if (hx_write_file_atomic(path, t, strlen(t)) < 0) hx_clear_error(); /* a live record is a courtesy */
    free(path);
    free(t);
    json_decref(j);
}

static int exec_one(const hx_store *s, const hx_exec_opts *o, const hx_instance *in, const char *const *input_keys,
                    const char *device, int full_verify, hx_exec_result *r);

int hx_exec_one(const hx_store *s, const hx_exec_opts *o, const hx_instance *in, const char *const *input_keys,
                const char *device, int full_verify, hx_exec_result *r)
{
    /* every line this thread logs for the instance starts with [name]; its progress goes to a live record */
    char *name = hx_exec_instance_name(in);
    live L = {s, o, in, name, 0};
    hx_log_scope_set(name);
    hx_progress_set_sink(live_progress, &L);
    int st = exec_one(s, o, in, input_keys, device, full_verify, r);
    hx_progress_set_sink(NULL, NULL);
    hx_log_scope_set(NULL);
    free(name);
    return st;
}

static int exec_one(const hx_store *s, const hx_exec_opts *o, const hx_instance *in, const char *const *input_keys,
                    const char *device, int full_verify, hx_exec_result *r)
{
    char *label = hx_plan_axes_label(in->axes);
    const char *lp = *label ? " (" : "", *rp = *label ? ")" : "";
    hx_lock lock;
    double t0 = hx_now();
    int st;
    if (hx_store_lock(s, in->key, 1, o->interrupted, &lock) != 0) {
        set_error(r, hx_last_error());
        r->store_error = !(o->interrupted && *o->interrupted);
        free(label);
        return HX_ST_FAILED;
    }
    if (hx_store_has(s, in->key)) {
        /* An entry some stage of this run is about to read is re-hashed in full (full_verify), so nothing is
         * computed from bytes that differ from their digests. */
        int v = hx_store_verify(s, in->key, o->verify || full_verify);
        char *stale = v == 0 ? stale_input(s, in, input_keys) : NULL;
        if (v == 0 && !stale) {
            hx_store_unlock(&lock);
            r->seconds = hx_now() - t0;
            free(label);
            return HX_ST_CACHED;
        }
        int bad;
        if (v) {
            char *why = xstrdup(hx_last_error()), *where = NULL;
            bad = hx_store_quarantine(s, in->key, &where);
            if (!bad)
                log_warn("store entry %.12s of stage '%s'%s%s%s is corrupted: %s; moved to %s, executing it again",
                         in->key, in->stage_name, lp, label, rp, why, where);
            free(why);
            free(where);
        } else {
            log_warn("store entry %.12s of stage '%s'%s%s%s is stale: %s; executing it again", in->key, in->stage_name,
                     lp, label, rp, stale);
            bad = hx_store_discard(s, in->key);
        }
        free(stale);
        if (bad) {
            set_error(r, hx_last_error());
            r->store_error = 1;
            hx_store_unlock(&lock);
            free(label);
            return HX_ST_FAILED;
        }
    }
    if (o->t_origin > 0)
        log_info("executing (%s, key %.12s, %.1fs after process start)", in->kind->name, in->key, hx_now() - o->t_origin);
    else
        log_info("executing (%s, key %.12s)", in->kind->name, in->key);
    snprintf(r->device, sizeof r->device, "%s", device);
    int rc = execute(s, o, in, input_keys, device);
    if (rc == 0) {
        st = HX_ST_EXECUTED;
        log_info("done in %.2fs", hx_now() - t0);
    } else {
        st = HX_ST_FAILED;
        r->store_error = rc == -2;
        set_error(r, hx_last_error());
        hx_log(HX_LOG_ERROR, "%s", r->error);
    }
    hx_store_unlock(&lock);
    r->seconds = hx_now() - t0;
    free(label);
    return st;
}

char *hx_exec_stale_input(const hx_plan *p, const hx_store *s, int i)
{
    const hx_instance *in = &p->inst[i];
    const char **keys = xcalloc((size_t)in->n_inputs + 1, sizeof *keys);
    for (int j = 0; j < in->n_inputs; j++) keys[j] = p->inst[in->input_inst[j]].key;
    char *why = stale_input(s, in, keys);
    free(keys);
    return why;
}

static void finish(sched *S, int i, int st)
{
    S->res[i].state = st;
    S->finished++;
    if (st == HX_ST_FAILED) S->any_failed = 1;
    event("stage", &S->p->inst[i], &S->res[i]);
    if (S->o->on_change) S->o->on_change(S->o->ud, i);
    pthread_cond_broadcast(&S->cv);
}

/* Under the lock: the next runnable instance (marking the ones that can never run), or -1. */
static int pick(sched *S, int *gpu)
{
    const hx_plan *p = S->p;
    int interrupted = S->o->interrupted && *S->o->interrupted;
    for (int i = 0; i < p->n; i++) {
        hx_exec_result *r = &S->res[i];
        if (r->state != HX_ST_PENDING) continue;
        const hx_instance *in = &p->inst[i];
        int ready = 1;
        for (int j = 0; j < in->n_inputs; j++) {
            int ds = S->res[in->input_inst[j]].state;
            if (ds == HX_ST_FAILED || ds == HX_ST_SKIPPED) {
                char *msg = xstrfmt("input '%s' (stage %s) did not complete", in->roles[j],
                                    p->inst[in->input_inst[j]].stage_name);
                set_error(r, msg);
                free(msg);
                finish(S, i, HX_ST_SKIPPED);
                ready = 0;
                break;
            }
            if (ds != HX_ST_CACHED && ds != HX_ST_EXECUTED) ready = 0;
        }
        if (r->state != HX_ST_PENDING) continue;
        if (interrupted) {
            set_error(r, "interrupted before it started");
            finish(S, i, HX_ST_SKIPPED);
            continue;
        }
        if (!ready) continue;
        *gpu = -1;
        if (in->kind->needs_gpu && S->o->n_gpus > 0) {
            /* the least busy GPU with a free share (--gpu-share: stages on one GPU at once; each opens its own
             * backend, with its own stream, cuBLASLt handle and workspaces) */
            int share = S->o->gpu_share > 1 ? S->o->gpu_share : 1;
            for (int g = 0; g < S->o->n_gpus; g++)
                if (S->gpu_busy[g] < share && (*gpu < 0 || S->gpu_busy[g] < S->gpu_busy[*gpu])) *gpu = g;
            if (*gpu < 0) continue; /* every GPU is taken: let another instance go first */
            S->gpu_busy[*gpu]++;
        }
        return i;
    }
    return -1;
}

static void *worker(void *arg)
{
    sched *S = arg;
    pthread_mutex_lock(&S->mu);
    while (S->finished < S->p->n) {
        int gpu, i = pick(S, &gpu);
        if (i < 0) {
            if (S->finished >= S->p->n) break;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100000000;
            if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&S->cv, &S->mu, &ts);
            continue;
        }
        S->res[i].state = HX_ST_RUNNING;
        char device[32];
        if (gpu >= 0 && S->o->accel) snprintf(device, sizeof device, "%s", S->o->accel);
        else if (gpu >= 0) snprintf(device, sizeof device, "cuda:%d", S->o->gpu_ids[gpu]);
        else snprintf(device, sizeof device, "cpu");
        if (S->o->on_change) S->o->on_change(S->o->ud, i);
        pthread_mutex_unlock(&S->mu);
        const hx_instance *in = &S->p->inst[i];
        const char **keys = xcalloc((size_t)in->n_inputs + 1, sizeof *keys);
        for (int j = 0; j < in->n_inputs; j++) keys[j] = S->p->inst[in->input_inst[j]].key;
        int st = hx_exec_one(S->s, S->o, in, keys, device, will_be_read(S, i), &S->res[i]);
        free(keys);
        pthread_mutex_lock(&S->mu);
        if (gpu >= 0) S->gpu_busy[gpu]--;
        finish(S, i, st);
    }
    pthread_mutex_unlock(&S->mu);
    return NULL;
}

int hx_exec_run(const hx_plan *p, const hx_store *s, const hx_exec_opts *o, hx_exec_result *res)
{
    hx_exec_opts po = *o; /* with the plan's binary digest (--strict), recorded in each manifest */
    po.binary_digest = p->binary_digest;
    sched S = {.p = p, .s = s, .o = &po, .res = res};
    pthread_mutex_init(&S.mu, NULL);
    pthread_cond_init(&S.cv, NULL);
    for (int i = 0; i < p->n; i++) res[i] = (hx_exec_result){.state = HX_ST_PENDING};
    int jobs = o->jobs < 1 ? 1 : o->jobs > HX_MAX_JOBS ? HX_MAX_JOBS : o->jobs;
    if (jobs > p->n) jobs = p->n > 0 ? p->n : 1;
    if (jobs == 1) {
        worker(&S);
    } else {
        pthread_t th[HX_MAX_JOBS];
        for (int t = 0; t < jobs; t++)
            if (pthread_create(&th[t], NULL, worker, &S)) BUG("pthread_create failed");
        for (int t = 0; t < jobs; t++) pthread_join(th[t], NULL);
    }
    pthread_mutex_destroy(&S.mu);
    pthread_cond_destroy(&S.cv);
    return S.any_failed ? 1 : 0;
}
