/* slurm_follow.c - following submitted Slurm jobs: outcome files, squeue, sacct, cancelling; records of detached runs. */
#include "interp/slurm_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"

#define POLL_SECONDS 1.0      /* between two looks at the queue */
#define CANCEL_GRACE 120.0    /* seconds to wait for cancelled jobs to leave the queue */
#define STDERR_TAIL_LINES 20  /* of a failed job's stderr, shown and kept in the run record */

/* ---- following jobs ---- */

/* The instances of a run as the follower sees them: keys, jobs, the inputs' indices (topological order). */
typedef struct job_set {
    int n;
    const char **key, **stage, **job; /* job NULL: no job (cached at submission) */
    int *n_in, **in;
    const char ***roles;
} job_set;

static void job_set_alloc(job_set *js, int n)
{
    js->n = n;
    js->key = xcalloc((size_t)n + 1, sizeof *js->key);
    js->stage = xcalloc((size_t)n + 1, sizeof *js->stage);
    js->job = xcalloc((size_t)n + 1, sizeof *js->job);
    js->n_in = xcalloc((size_t)n + 1, sizeof *js->n_in);
    js->in = xcalloc((size_t)n + 1, sizeof *js->in);
    js->roles = xcalloc((size_t)n + 1, sizeof *js->roles);
}

static void job_set_free(job_set *js)
{
    for (int i = 0; i < js->n; i++) {
        free(js->in[i]);
        free(js->roles[i]);
    }
    free(js->key);
    free(js->stage);
    free(js->job);
    free(js->n_in);
    free(js->in);
    free(js->roles);
}

static int is_final(int st)
{
    return st == HX_ST_CACHED || st == HX_ST_EXECUTED || st == HX_ST_FAILED || st == HX_ST_SKIPPED;
}

static void set_err(hx_exec_result *r, char *msg) /* takes MSG */
{
    free(r->error);
    r->error = msg;
}

/* The last lines of a job's stderr (xmalloc'd, "" when empty or absent). */
static char *stderr_tail(const hx_store *s, const char *run_id, const char *key)
{
    char *p = hx_slurm_job_path(s, run_id, key, ".err"), *text = NULL;
    size_t len = 0;
    if (hx_read_file(p, &text, &len) < 0) {
        hx_clear_error();
        free(p);
        return xstrdup("");
    }
    free(p);
    hx_slurm_chomp(text);
    len = strlen(text);
    int lines = 0;
    size_t at = len;
    while (at > 0 && lines < STDERR_TAIL_LINES)
        if (text[--at] == '\n') lines++;
    if (text[at] == '\n') at++;
    if (len - at > 4000) at = len - 4000;
    char *t = xstrdup(text + at);
    free(text);
    return t;
}

/* A failed instance's error: WHY, then where its stderr is kept and its last lines. */
static char *failure(const hx_store *s, const char *run_id, const char *key, const char *why)
{
    char *tail = stderr_tail(s, run_id, key), *path = hx_slurm_job_path(s, run_id, key, ".err");
    char *abs = realpath(path, NULL); /* the record names it wherever it is read from */
    if (abs) free(path), path = abs;
    char *msg = *tail ? xstrfmt("%s; stderr (%s) ends:\n%s", why, path, tail) : xstrfmt("%s (stderr: %s, empty)", why, path);
    free(tail);
    free(path);
    return msg;
}

/* Read exec-key's outcome file into R; returns the state, or -1 when there is none (yet). */
static int read_outcome(const hx_store *s, const char *run_id, const char *key, hx_exec_result *r)
{
    char *p = hx_slurm_job_path(s, run_id, key, ".json");
    json_t *o = hx_file_exists(p) ? hx_read_json(p, 0) : NULL;
    free(p);
    if (!o) return -1;
    const char *st = json_string_value(json_object_get(o, "state"));
    int state = !st ? -1 : !strcmp(st, "executed") ? HX_ST_EXECUTED : !strcmp(st, "cached") ? HX_ST_CACHED
              : !strcmp(st, "failed") ? HX_ST_FAILED : -1;
    if (state >= 0) {
        r->seconds = json_number_value(json_object_get(o, "seconds"));
        const char *dev = json_string_value(json_object_get(o, "device"));
        if (dev) snprintf(r->device, sizeof r->device, "%s", dev);
        const char *e = json_string_value(json_object_get(o, "error"));
        if (state == HX_ST_FAILED) set_err(r, failure(s, run_id, key, e ? e : "failed"));
        r->store_error = json_is_true(json_object_get(o, "store_error"));
    }
    json_decref(o);
    return state;
}

/* {job id: "STATE|REASON|NODES"} of the jobs in IDS that the controller still knows; NULL + error if it
 * cannot be asked. */
static json_t *queue_snapshot(const json_t *ids)
{
    json_t *q = json_object();
    if (!json_array_size(ids)) return q;
    hx_sbuf list = {0};
    for (size_t i = 0; i < json_array_size(ids); i++)
        hx_sb_printf(&list, "%s%s", i ? "," : "", json_string_value(json_array_get(ids, i)));
    char *jobs = hx_sb_take(&list);
    char *argv[] = {"squeue", "-h", "-t", "all", "-j", jobs, "-o", "%i|%T|%r|%N", NULL};
    char *out = NULL, *err = NULL;
    int rc = hx_slurm_run_cmd(argv, &out, &err);
    if (rc > 0 && strstr(err, "Invalid job id")) rc = 0; /* none of them is known any more */
    else if (rc > 0) rc = error("squeue: %s", hx_slurm_chomp(err));
    if (rc < 0) {
        json_decref(q);
        q = NULL;
    } else {
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
            char *bar = strchr(line, '|');
            if (!bar) continue;
            *bar = 0;
            json_object_set_new(q, line, json_string(bar + 1));
        }
    }
    free(out);
    free(err);
    free(jobs);
    return q;
}

/* A finished job's state from accounting: sacct (slurmdbd), else sacct -c (the job completion log: the
 * local cluster of scripts/slurm-local.sh). xmalloc'd "STATE|EXIT", or NULL when neither knows it. */
static char *accounting_state(const char *job)
{
    char *with_dbd[] = {"sacct", "-n", "-P", "-X", "-j", (char *)job, "-o", "State,ExitCode", NULL};
    char *with_log[] = {"sacct", "-c", "-n", "-P", "-X", "-j", (char *)job, "-o", "State,ExitCode", NULL};
    char **tries[] = {with_dbd, with_log};
    for (int t = 0; t < 2; t++) {
        char **argv = tries[t];
        char *out = NULL, *err = NULL;
        int rc = hx_slurm_run_cmd(argv, &out, &err);
        char *line = rc == 0 ? strtok(out, "\n") : NULL;
        char *st = line && *line ? xstrdup(line) : NULL;
        if (rc < 0) hx_clear_error();
        free(out);
        free(err);
        if (st) {
            /* "CANCELLED by 0" -> "CANCELLED" */
            char *sp = strchr(st, ' '), *bar = strchr(st, '|');
            if (sp && bar && sp < bar) memmove(sp, bar, strlen(bar) + 1);
            return st;
        }
    }
    return NULL;
}

static int state_is(const char *st, const char *const *names)
{
    for (; *names; names++)
        if (!strncmp(st, *names, strlen(*names)) && (st[strlen(*names)] == 0 || st[strlen(*names)] == '|')) return 1;
    return 0;
}

static const char *const WAITING[] = {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD", NULL};
static const char *const ACTIVE[] = {"RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "STOPPED", "RESIZING",
                                     "SIGNALING", "STAGE_OUT", NULL};

/* The input of I that did not complete, or -1. */
static int failed_input(const job_set *js, const hx_exec_result *res, int i)
{
    for (int j = 0; j < js->n_in[i]; j++) {
        int d = js->in[i][j];
        if (d >= 0 && (res[d].state == HX_ST_FAILED || res[d].state == HX_ST_SKIPPED)) return j;
    }
    return -1;
}

/*
 * One look at every job not final: the queue (pending, running), else the outcome file exec-key wrote before
 * it exited, else accounting (how a job that wrote none ended). STOPPED: the run was interrupted or cancelled,
 * so a job cancelled before it ran is "skipped", not "failed". VERBOSE logs jobs that start running. Calls
 * CHANGED(UD, i) for each instance whose state changed. Returns the number still not final, or -1 + error when
 * the controller cannot be asked.
 */
static int poll_jobs(const hx_store *s, const char *run_id, const job_set *js, hx_exec_result *res, int stopped,
                     int verbose, void (*changed)(void *, int), void *ud)
{
    json_t *ids = json_array();
    for (int i = 0; i < js->n; i++)
        if (!is_final(res[i].state) && js->job[i]) json_array_append_new(ids, json_string(js->job[i]));
    json_t *q = queue_snapshot(ids), *orphans = json_array();
    json_decref(ids);
    if (!q) {
        json_decref(orphans);
        return -1;
    }
    int left = 0;
    for (int i = 0; i < js->n; i++) {
        hx_exec_result *r = &res[i];
        int before = r->state;
        if (is_final(before)) continue;
        if (!js->job[i]) { /* never submitted (a submission that failed part way) */
            set_err(r, xstrdup("not submitted"));
            r->state = HX_ST_SKIPPED;
            if (changed) changed(ud, i);
            continue;
        }
        /* The queue first: a job requeued after a preemption runs again, and an outcome file it wrote when it
         * was stopped is from the earlier attempt. */
        const char *qs = json_string_value(json_object_get(q, js->job[i]));
        int queued = qs && (state_is(qs, WAITING) || state_is(qs, ACTIVE));
        int st = queued ? -1 : read_outcome(s, run_id, js->key[i], r);
        char *acct = NULL;
        if (st < 0 && qs && state_is(qs, WAITING)) {
            st = HX_ST_PENDING;
            /* its input failed: Slurm cancels it (--kill-on-invalid-dep); make sure of it */
            if (failed_input(js, res, i) >= 0) json_array_append_new(orphans, json_string(js->job[i]));
        } else if (st < 0 && qs && state_is(qs, ACTIVE)) {
            st = HX_ST_RUNNING;
            if (before != HX_ST_RUNNING && verbose) {
                const char *nodes = strrchr(qs, '|');
                log_info("%s (key %.12s): slurm job %s running on %s", js->stage[i], js->key[i], js->job[i],
                         nodes && nodes[1] ? nodes + 1 : "?");
            }
        } else if (st < 0) {
            /* ended without an outcome: killed (time limit, preemption, memory, scancel) or never started */
            if (!qs) qs = acct = accounting_state(js->job[i]);
            int fi = failed_input(js, res, i);
            if (!qs) {
                st = HX_ST_FAILED;
                char *why = xstrfmt("slurm job %s is unknown to squeue and sacct", js->job[i]);
                set_err(r, failure(s, run_id, js->key[i], why));
                free(why);
            } else if (state_is(qs, (const char *const[]){"COMPLETED", NULL}) && hx_store_has(s, js->key[i])) {
                st = HX_ST_EXECUTED; /* committed, but its outcome file could not be written */
            } else if (fi >= 0) {
                st = HX_ST_SKIPPED;
                set_err(r, xstrfmt("input '%s' (stage %s) did not complete", js->roles[i][fi], js->stage[js->in[i][fi]]));
            } else if (stopped && state_is(qs, (const char *const[]){"CANCELLED", NULL})) {
                st = HX_ST_SKIPPED;
                set_err(r, xstrfmt("slurm job %s cancelled before it finished", js->job[i]));
            } else {
                char *state = xstrdup(qs), *bar = strchr(state, '|');
                if (bar) *bar = 0;
                char *why = xstrfmt("slurm job %s ended %s without committing (time limit, preemption, memory, node "
                                    "failure or scancel; a resubmission resumes from its checkpoint)", js->job[i], state);
                set_err(r, failure(s, run_id, js->key[i], why));
                free(why);
                free(state);
                st = HX_ST_FAILED;
            }
        }
        free(acct);
        r->state = st;
        if (st != before && changed) changed(ud, i);
        if (!is_final(st)) left++;
    }
    if (json_array_size(orphans) && hx_slurm_scancel(orphans) < 0) log_warn("%s", hx_last_error());
    json_decref(orphans);
    json_decref(q);
    return left;
}

typedef struct wait_ctx {
    const hx_plan *p;
    const hx_exec_opts *o;
    hx_exec_result *res;
} wait_ctx;

static void wait_changed(void *ud, int i)
{
    wait_ctx *w = ud;
    hx_exec_result *r = &w->res[i];
    const hx_instance *in = &w->p->inst[i];
    char *label = hx_plan_axes_label(in->axes);
    const char *lp = *label ? " (" : "", *rp = *label ? ")" : "";
    if (r->state == HX_ST_FAILED) hx_log(HX_LOG_ERROR, "%s%s%s%s: %s", in->stage_name, lp, label, rp, r->error);
    else if (r->state == HX_ST_EXECUTED) log_info("%s%s%s%s: done in %.2fs", in->stage_name, lp, label, rp, r->seconds);
    if (hx_log_is_json()) {
        json_t *o = json_pack("{s:s,s:O,s:s,s:s,s:o}", "stage", in->stage_name, "axes", in->axes, "key", in->key,
                              "state", hx_state_name(r->state), "seconds", hx_json_num(r->seconds));
        if (r->error) json_object_set_new(o, "error", json_string(r->error));
        char *t = json_dumps(o, JSON_COMPACT);
        t[strlen(t) - 1] = 0;
        hx_log_event("stage", t + 1);
        free(t);
        json_decref(o);
    }
    free(label);
    if (w->o->on_change) w->o->on_change(w->o->ud, i);
}

/* The jobs of RES not final, as a JSON array of ids. */
static json_t *open_jobs(const job_set *js, const hx_exec_result *res)
{
    json_t *ids = json_array();
    for (int i = 0; i < js->n; i++)
        if (js->job[i] && !is_final(res[i].state)) json_array_append_new(ids, json_string(js->job[i]));
    return ids;
}

int hx_slurm_wait(const hx_plan *p, const hx_store *s, const hx_exec_opts *o, const json_t *slurm_rec,
                  hx_exec_result *res)
{
    job_set js;
    job_set_alloc(&js, p->n);
    json_t *jobs = json_object_get(slurm_rec, "jobs");
    for (int i = 0; i < p->n; i++) {
        const hx_instance *in = &p->inst[i];
        js.key[i] = in->key;
        js.stage[i] = in->stage_name;
        js.job[i] = json_string_value(json_object_get(jobs, in->key));
        js.n_in[i] = in->n_inputs;
        js.in[i] = xcalloc((size_t)in->n_inputs + 1, sizeof **js.in);
        js.roles[i] = xcalloc((size_t)in->n_inputs + 1, sizeof **js.roles);
        for (int j = 0; j < in->n_inputs; j++) {
            js.in[i][j] = in->input_inst[j];
            js.roles[i][j] = in->roles[j];
        }
    }
    wait_ctx w = {.p = p, .o = o, .res = res};
    double cancelled_at = 0;
    int warned = 0;
    for (;;) {
        int stopped = cancelled_at > 0;
        int left = poll_jobs(s, o->run_id, &js, res, stopped, 1, wait_changed, &w);
        if (left == 0) break;
        if (left < 0 && !warned++) log_warn("%s (retrying)", hx_last_error());
        if (o->interrupted && *o->interrupted && !stopped) {
            json_t *ids = open_jobs(&js, res);
            log_info("cancelling %zu slurm job%s of run %s", json_array_size(ids), json_array_size(ids) == 1 ? "" : "s",
                     o->run_id);
            if (hx_slurm_scancel(ids) < 0) log_warn("%s", hx_last_error());
            json_decref(ids);
            cancelled_at = hx_now();
        }
        if (stopped && hx_now() - cancelled_at > CANCEL_GRACE) {
            for (int i = 0; i < p->n; i++)
                if (!is_final(res[i].state)) {
                    set_err(&res[i], xstrfmt("slurm job %s did not end within %.0f s of its cancellation", js.job[i],
                                             CANCEL_GRACE));
                    res[i].state = HX_ST_SKIPPED;
                    wait_changed(&w, i);
                }
            break;
        }
        for (int t = 0; t < (int)(POLL_SECONDS * 10) && !(o->interrupted && *o->interrupted && !stopped); t++)
            usleep(100000);
    }
    int any_failed = 0;
    for (int i = 0; i < p->n; i++) any_failed |= res[i].state == HX_ST_FAILED;
    job_set_free(&js);
    return any_failed;
}

/* ---- records of detached runs ---- */

static int state_of_name(const char *n)
{
    for (int st = HX_ST_PENDING; st <= HX_ST_SKIPPED; st++)
        if (n && !strcmp(n, hx_state_name(st))) return st;
    return HX_ST_PENDING;
}

/* The job set and results of RUN's stages (borrowing the record's strings). */
static void from_record(const json_t *run, job_set *js, hx_exec_result **res)
{
    json_t *stages = json_object_get(run, "stages");
    json_t *jobs = json_object_get(json_object_get(run, "slurm"), "jobs");
    int n = (int)json_array_size(stages);
    job_set_alloc(js, n);
    *res = xcalloc((size_t)n + 1, sizeof **res);
    for (int i = 0; i < n; i++) {
        json_t *st = json_array_get(stages, i);
        js->key[i] = json_string_value(json_object_get(st, "key"));
        js->stage[i] = json_string_value(json_object_get(st, "stage"));
        js->job[i] = json_string_value(json_object_get(jobs, js->key[i] ? js->key[i] : ""));
        json_t *inputs = json_object_get(st, "inputs");
        js->in[i] = xcalloc(json_object_size(inputs) + 1, sizeof **js->in);
        js->roles[i] = xcalloc(json_object_size(inputs) + 1, sizeof **js->roles);
        const char *role;
        json_t *k;
        json_object_foreach(inputs, role, k) {
            int d = -1;
            for (int j = 0; j < i && d < 0; j++)
                if (js->key[j] && json_string_value(k) && !strcmp(js->key[j], json_string_value(k))) d = j;
            js->roles[i][js->n_in[i]] = role;
            js->in[i][js->n_in[i]++] = d;
        }
        (*res)[i].state = state_of_name(json_string_value(json_object_get(st, "state")));
        (*res)[i].seconds = json_number_value(json_object_get(st, "seconds"));
        const char *e = json_string_value(json_object_get(st, "error"));
        (*res)[i].error = e ? xstrdup(e) : NULL;
    }
}

static void record_changed(void *ud, int i)
{
    int *changed = ud;
    changed[i] = 1;
}

int hx_slurm_refresh(const hx_store *s, json_t *run)
{
    json_t *slurm = json_object_get(run, "slurm");
    const char *status = json_string_value(json_object_get(run, "status"));
    const char *id = json_string_value(json_object_get(run, "run_id"));
    /* a record written before its jobs were all submitted is the submitter's to finish */
    if (!slurm || !id || !status || !json_is_true(json_object_get(slurm, "submitted"))) return 0;
    int stopped = !strcmp(status, "cancelled") || !strcmp(status, "interrupted");
    if (strcmp(status, "running") && !stopped) return 0;
    job_set js;
    hx_exec_result *res;
    from_record(run, &js, &res);
    int *changed = xcalloc((size_t)js.n + 1, sizeof *changed);
    int left = poll_jobs(s, id, &js, res, stopped, 0, record_changed, changed);
    int any = 0, failed = 0;
    json_t *stages = json_object_get(run, "stages");
    for (int i = 0; i < js.n; i++) {
        failed |= res[i].state == HX_ST_FAILED;
        if (!changed[i]) continue;
        any = 1;
        json_t *st = json_array_get(stages, i);
        json_object_set_new(st, "state", json_string(hx_state_name(res[i].state)));
        json_object_set_new(st, "seconds", hx_json_num(res[i].seconds));
        if (res[i].device[0]) json_object_set_new(st, "device", json_string(res[i].device));
        if (res[i].error) json_object_set_new(st, "error", json_string(res[i].error));
    }
    if (left == 0 && !strcmp(status, "running")) {
        json_object_set_new(run, "status", json_string(failed ? "failed" : "ok"));
        any = 1;
    }
    for (int i = 0; i < js.n; i++) free(res[i].error);
    free(res);
    free(changed);
    job_set_free(&js);
    return left < 0 ? -1 : any;
}

int hx_slurm_cancel(const hx_store *s, json_t *run)
{
    if (!json_object_get(run, "slurm")) return error("run %s was not submitted to Slurm (stop a local run with Ctrl-C)",
                                                      json_string_value(json_object_get(run, "run_id")));
    if (hx_slurm_refresh(s, run) < 0) return -1;
    job_set js;
    hx_exec_result *res;
    from_record(run, &js, &res);
    json_t *ids = open_jobs(&js, res);
    int n = (int)json_array_size(ids);
    int rc = hx_slurm_scancel(ids);
    json_decref(ids);
    for (int i = 0; i < js.n; i++) free(res[i].error);
    free(res);
    job_set_free(&js);
    if (rc < 0) return -1;
    if (n) json_object_set_new(run, "status", json_string("cancelled"));
    return n;
}

int hx_slurm_write_outcome(const hx_store *s, const char *run_id, const char *key, int state, const hx_exec_result *r)
{
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    const char *job = getenv("SLURM_JOB_ID");
    json_t *o = json_pack("{s:s,s:s,s:o,s:s,s:s,s:s?,s:b}", "key", key, "state", hx_state_name(state), "seconds",
                          hx_json_num(r->seconds), "device", r->device, "host", host, "job", job, "store_error", r->store_error);
    if (r->error) json_object_set_new(o, "error", json_string(r->error));
    char *text = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    char *p = hx_slurm_job_path(s, run_id, key, ".json"), *dir = xstrfmt("%s/runs/%s/slurm", s->root, run_id);
    int rc = hx_mkdir_p(dir) < 0 ? -1 : hx_write_file_atomic(p, text, strlen(text));
    free(text);
    free(p);
    free(dir);
    return rc;
}
