/* slurm.c - the Slurm executor: sbatch per uncached instance (hx exec-key), afterok dependencies, job states
 * from the jobs' outcome files, squeue and sacct, scancel. The design and its assumptions: docs/cluster.md. */
#include "engine/hx/slurm.h"

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

/* ---- Slurm's commands ---- */

/* Run ARGV (no shell) and capture its stdout and stderr (xmalloc'd). Returns the exit status, or -1 + error. */
static int run_cmd(char *const *argv, char **out, char **err)
{
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0) return error("pipe: %s", strerror(errno));
    if (pipe2(pe, O_CLOEXEC) < 0) {
        close(po[0]), close(po[1]);
        return error("pipe: %s", strerror(errno));
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
        return error("fork: %s", strerror(errno));
    }
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        signal(SIGINT, SIG_IGN); /* Ctrl-C is the submitter's to handle (it cancels the jobs) */
        execvp(argv[0], argv);
        dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    hx_sbuf bo = {0}, be = {0};
    struct pollfd fds[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int k = 0; k < 2; k++) {
            if (fds[k].fd < 0 || !(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[4096];
            ssize_t n = read(fds[k].fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                close(fds[k].fd);
                fds[k].fd = -1;
                open_fds--;
            } else {
                hx_sb_add(k ? &be : &bo, buf, (size_t)n);
            }
        }
    }
    for (int k = 0; k < 2; k++)
        if (fds[k].fd >= 0) close(fds[k].fd);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return error("waitpid %s: %s", argv[0], strerror(errno));
    *out = hx_sb_take(&bo);
    *err = hx_sb_take(&be);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && strstr(*err, "cannot run"))
        return error("%s is not installed here (Slurm's client commands must be on PATH; docs/cluster.md)", argv[0]);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Trailing whitespace and newlines off S, in place. */
static char *chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r')) s[--n] = 0;
    return s;
}

/* scancel the job ids in IDS (a JSON array of strings); 0 or -1 + error. */
static int scancel(const json_t *ids)
{
    size_t n = json_array_size(ids);
    if (!n) return 0;
    char **argv = xcalloc(n + 2, sizeof *argv);
    argv[0] = "scancel";
    for (size_t i = 0; i < n; i++) argv[i + 1] = (char *)json_string_value(json_array_get(ids, i));
    char *out = NULL, *err = NULL;
    int rc = run_cmd(argv, &out, &err);
    /* jobs that ended meanwhile make scancel complain; that is not a failure to cancel */
    if (rc > 0 && !strstr(err, "already completing or completed") && !strstr(err, "Invalid job id"))
        rc = error("scancel: %s", chomp(err));
    else if (rc > 0)
        rc = 0;
    free(argv);
    free(out);
    free(err);
    return rc;
}

/* ---- resources ---- */

/* Defaults per kind, decided here and nowhere else: a GPU kind gets one GPU and a few cores to feed it. */
static hx_resources kind_defaults(const hx_stage_kind *k)
{
    if (k->needs_gpu) return (hx_resources){.cpus = 2, .gpus = 1, .mem_mb = 16384};
    return (hx_resources){.cpus = 1, .gpus = 0, .mem_mb = 2048};
}

/* "512M", "16G", "1T", or a number of MiB -> MiB; -1 if malformed. */
static long long parse_mem(const json_t *v)
{
    if (json_is_integer(v)) return json_integer_value(v) > 0 ? json_integer_value(v) : -1;
    if (!json_is_string(v)) return -1;
    const char *s = json_string_value(v);
    char *end;
    long long n = strtoll(s, &end, 10);
    if (end == s || n <= 0) return -1;
    long long mul = !*end ? 1 : !strcmp(end, "K") ? -1024 : !strcmp(end, "M") ? 1 : !strcmp(end, "G") ? 1024
                  : !strcmp(end, "T") ? 1024 * 1024 : 0;
    if (!mul) return -1;
    if (mul < 0) return n / 1024 > 0 ? n / 1024 : 1;
    return n * mul;
}

int hx_resources_of(const hx_recipe *r, const hx_instance *in, int with_gpus, hx_resources *out)
{
    *out = kind_defaults(in->kind);
    char *sp = hx_path_key("stages", in->stage_name), *path = hx_path_key(sp, "resources");
    free(sp);
    json_t *raw = hx_recipe_get(r, path);
    int rc = 0;
    if (raw) {
        json_t *v = hx_recipe_resolve(r, raw, path, in->axes, NULL);
        const char *k;
        json_t *x;
        if (!v) rc = -1;
        else if (!json_is_object(v))
            rc = hx_recipe_error_at(r, path, "stage '%s': resources: expected a map {cpus, gpus, mem, time}", in->stage_name);
        json_object_foreach(rc == 0 ? v : NULL, k, x) {
            char *kp = hx_path_key(path, k);
            if (!strcmp(k, "cpus") || !strcmp(k, "gpus")) {
                long long lo = !strcmp(k, "cpus"), n = json_is_integer(x) ? json_integer_value(x) : -1;
                if (n < lo || n > 4096)
                    rc = hx_recipe_error_at(r, kp, "stage '%s': resources.%s: expected an integer >= %lld", in->stage_name,
                                            k, lo);
                else if (!strcmp(k, "cpus")) out->cpus = (int)n;
                else out->gpus = (int)n;
            } else if (!strcmp(k, "mem")) {
                long long mb = parse_mem(x);
                if (mb < 0)
                    rc = hx_recipe_error_at(r, kp, "stage '%s': resources.mem: expected MiB or a size like 512M, 16G",
                                            in->stage_name);
                else out->mem_mb = mb;
            } else if (!strcmp(k, "time")) {
                /* Slurm's forms: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS */
                char t[32] = "";
                if (json_is_integer(x) && json_integer_value(x) > 0)
                    snprintf(t, sizeof t, "%lld", (long long)json_integer_value(x));
                else if (json_is_string(x) && strlen(json_string_value(x)) < sizeof t)
                    snprintf(t, sizeof t, "%s", json_string_value(x));
                if (!*t || strspn(t, "0123456789:-") != strlen(t) || !strchr("0123456789", t[0]))
                    rc = hx_recipe_error_at(r, kp, "stage '%s': resources.time: expected minutes or D-HH:MM:SS",
                                            in->stage_name);
                else snprintf(out->time, sizeof out->time, "%s", t);
            }
            /* other keys were refused when the recipe was loaded (recipe.c) */
            free(kp);
            if (rc) break;
        }
        json_decref(v);
    }
    if (!with_gpus) out->gpus = 0;
    free(path);
    return rc;
}

/* ---- job submission ---- */

char *hx_slurm_job_path(const hx_store *s, const char *run_id, const char *key, const char *ext)
{
    return xstrfmt("%s/runs/%s/slurm/%s%s", s->root, run_id, key, ext);
}

char **hx_slurm_sbatch_argv(const hx_slurm_opts *so, const hx_resources *res, const char *job_name,
                            const char *log_base, const char *dependency, const char *script)
{
    char **a = xcalloc((size_t)so->n_opts + 20, sizeof *a);
    int n = 0;
    a[n++] = xstrdup("sbatch");
    a[n++] = xstrdup("--parsable");
    a[n++] = xstrfmt("--job-name=%s", job_name);
    a[n++] = xstrfmt("--output=%s.out", log_base);
    a[n++] = xstrfmt("--error=%s.err", log_base);
    const char *slash = strrchr(log_base, '/');
    if (slash && slash > log_base) a[n++] = xstrfmt("--chdir=%.*s", (int)(slash - log_base), log_base);
    a[n++] = xstrdup("--nodes=1");
    a[n++] = xstrdup("--ntasks=1");
    a[n++] = xstrfmt("--cpus-per-task=%d", res->cpus);
    a[n++] = xstrfmt("--mem=%lldM", res->mem_mb);
    if (res->gpus > 0) a[n++] = xstrfmt("--gres=gpu:%d", res->gpus);
    if (res->time[0]) a[n++] = xstrfmt("--time=%s", res->time);
    if (so->partition) a[n++] = xstrfmt("--partition=%s", so->partition);
    if (so->account) a[n++] = xstrfmt("--account=%s", so->account);
    if (dependency) {
        a[n++] = xstrfmt("--dependency=%s", dependency);
        /* a failed input cancels its dependents at once instead of leaving them pending forever */
        a[n++] = xstrdup("--kill-on-invalid-dep=yes");
    }
    /* the user's options last: sbatch takes the last value of an option given twice */
    for (int i = 0; i < so->n_opts; i++) a[n++] = xstrfmt("--%s", so->opts[i]);
    a[n++] = xstrdup(script);
    return a;
}

void hx_slurm_argv_free(char **argv)
{
    for (char **p = argv; p && *p; p++) free(*p);
    free(argv);
}

/* S in single quotes for sh (xmalloc'd). */
static char *sh_quote(const char *s)
{
    hx_sbuf b = {0};
    hx_sb_putc(&b, '\'');
    for (; *s; s++)
        if (*s == '\'') hx_sb_puts(&b, "'\\''");
        else hx_sb_putc(&b, *s);
    hx_sb_putc(&b, '\'');
    return hx_sb_take(&b);
}

static int write_script(const char *path, const hx_slurm_opts *so, const char *root, const hx_instance *in,
                        const char *run_id, const hx_resources *res)
{
    char *hx = sh_quote(so->hx_binary), *st = sh_quote(root), *label = hx_plan_axes_label(in->axes);
    char *text = xstrfmt("#!/bin/sh\n"
                         "# hx run %s: stage %s%s%s%s, key %s (written by hx run --executor slurm)\n"
                         "exec %s exec-key %s %s --store %s --threads %d --device %s\n",
                         run_id, in->stage_name, *label ? " (" : "", label, *label ? ")" : "", in->key, hx, in->key,
                         run_id, st, res->cpus, res->gpus > 0 ? "cuda" : "cpu");
    int rc = hx_write_file(path, text, strlen(text));
    free(text);
    free(hx);
    free(st);
    free(label);
    return rc;
}

/* The job id printed by sbatch --parsable ("123" or "123;cluster"), or NULL. */
static char *parse_job_id(const char *out)
{
    size_t n = strspn(out, "0123456789");
    if (!n || (out[n] && out[n] != ';' && out[n] != '\n')) return NULL;
    char *id = xmalloc(n + 1);
    memcpy(id, out, n);
    id[n] = 0;
    return id;
}

static int submit_one(const hx_plan *p, const hx_exec_opts *o, const hx_slurm_opts *so, const char *root, json_t *jobs,
                      int i)
{
    const hx_instance *in = &p->inst[i];
    hx_resources res;
    if (hx_resources_of(p->recipe, in, so->gpus, &res) < 0) return -1;
    hx_sbuf dep = {0};
    for (int j = 0; j < in->n_inputs; j++) {
        const char *jid = json_string_value(json_object_get(jobs, p->inst[in->input_inst[j]].key));
        if (jid) hx_sb_printf(&dep, "%s%s", dep.len ? ":" : "afterok:", jid);
    }
    char *dependency = dep.len ? hx_sb_take(&dep) : NULL;
    hx_sb_free(&dep);
    /* absolute paths: a job starts on another host, in the run's directory (--chdir) */
    hx_store abs = {.root = (char *)root};
    char *script = hx_slurm_job_path(&abs, o->run_id, in->key, ".sh");
    char *log_base = hx_slurm_job_path(&abs, o->run_id, in->key, "");
    char *name = xstrfmt("hx:%s:%.12s", in->stage_name, in->key);
    int rc = -1;
    char **argv = NULL, *out = NULL, *err = NULL;
    if (write_script(script, so, root, in, o->run_id, &res) < 0) goto done;
    argv = hx_slurm_sbatch_argv(so, &res, name, log_base, dependency, script);
    int st = run_cmd(argv, &out, &err);
    if (st < 0) goto done;
    char *id = st == 0 ? parse_job_id(out) : NULL;
    if (!id) {
        error("sbatch for stage '%s' (key %.12s) failed: %s%s", in->stage_name, in->key, chomp(err),
              st == 0 ? " (no job id printed)" : "");
        goto done;
    }
    json_object_set_new(jobs, in->key, json_string(id));
    char *label = hx_plan_axes_label(in->axes);
    log_info("%s%s%s%s: slurm job %s (cpus %d, mem %lldM, gpus %d%s%s)", in->stage_name, *label ? " (" : "", label,
             *label ? ")" : "", id, res.cpus, res.mem_mb, res.gpus, dependency ? ", " : "", dependency ? dependency : "");
    free(label);
    free(id);
    rc = 0;
done:
    hx_slurm_argv_free(argv);
    free(out);
    free(err);
    free(dependency);
    free(script);
    free(log_base);
    free(name);
    return rc;
}

int hx_slurm_submit(const hx_plan *p, const hx_store *s, const hx_exec_opts *o, const hx_slurm_opts *so,
                    json_t *slurm_rec, hx_exec_result *res)
{
    char *root = realpath(s->root, NULL);
    if (!root) return error("store '%s': %s", s->root, strerror(errno));
    char *dir = xstrfmt("%s/runs/%s/slurm", root, o->run_id);
    json_t *jobs = json_object(), *opts = json_array();
    for (int i = 0; i < so->n_opts; i++) json_array_append_new(opts, json_string(so->opts[i]));
    json_object_set_new(slurm_rec, "partition", so->partition ? json_string(so->partition) : json_null());
    json_object_set_new(slurm_rec, "account", so->account ? json_string(so->account) : json_null());
    json_object_set_new(slurm_rec, "opts", opts);
    json_object_set_new(slurm_rec, "hx", json_string(so->hx_binary));
    json_object_set_new(slurm_rec, "jobs", jobs);
    int rc = hx_mkdir_p(dir);
    for (int i = 0; rc == 0 && i < p->n; i++) {
        res[i] = (hx_exec_result){.state = HX_ST_PENDING};
        const char *key = p->inst[i].key;
        /* Checked without the lock: a corrupted entry is executed again by its job, under the lock. */
        if (hx_store_has(s, key) && hx_store_verify(s, key, o->verify) == 0) {
            res[i].state = HX_ST_CACHED;
            if (o->on_change) o->on_change(o->ud, i);
            continue;
        }
        hx_clear_error();
        rc = submit_one(p, o, so, root, jobs, i);
    }
    if (rc == 0) json_object_set_new(slurm_rec, "submitted", json_true());
    if (rc < 0) {
        /* no half-submitted run: what went in is taken back */
        char *why = xstrdup(hx_last_error());
        json_t *ids = json_array(), *v;
        const char *k;
        json_object_foreach(jobs, k, v) json_array_append(ids, v);
        if (scancel(ids) < 0) log_warn("%s", hx_last_error());
        json_decref(ids);
        error("%s", why);
        free(why);
    }
    free(dir);
    free(root);
    return rc;
}

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
    chomp(text);
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
    int rc = run_cmd(argv, &out, &err);
    if (rc > 0 && strstr(err, "Invalid job id")) rc = 0; /* none of them is known any more */
    else if (rc > 0) rc = error("squeue: %s", chomp(err));
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
        int rc = run_cmd(argv, &out, &err);
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
    if (json_array_size(orphans) && scancel(orphans) < 0) log_warn("%s", hx_last_error());
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
            if (scancel(ids) < 0) log_warn("%s", hx_last_error());
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
    int rc = scancel(ids);
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
