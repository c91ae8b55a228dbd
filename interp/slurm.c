/* slurm.c - the Slurm executor: sbatch per uncached instance (hx exec-key), afterok dependencies, job states
 * from the jobs' outcome files, squeue and sacct, scancel. The design and its assumptions: docs/cluster.md. This file:
 * running Slurm's commands, resources, submission; following the jobs: slurm_follow.c. */
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


/* ---- Slurm's commands ---- */

/* Run ARGV (no shell) and capture its stdout and stderr (xmalloc'd). Returns the exit status, or -1 + error. */
int hx_slurm_run_cmd(char *const *argv, char **out, char **err)
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
char *hx_slurm_chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r')) s[--n] = 0;
    return s;
}

/* scancel the job ids in IDS (a JSON array of strings); 0 or -1 + error. */
int hx_slurm_scancel(const json_t *ids)
{
    size_t n = json_array_size(ids);
    if (!n) return 0;
    char **argv = xcalloc(n + 2, sizeof *argv);
    argv[0] = "scancel";
    for (size_t i = 0; i < n; i++) argv[i + 1] = (char *)json_string_value(json_array_get(ids, i));
    char *out = NULL, *err = NULL;
    int rc = hx_slurm_run_cmd(argv, &out, &err);
    /* jobs that ended meanwhile make scancel complain; that is not a failure to cancel */
    if (rc > 0 && !strstr(err, "already completing or completed") && !strstr(err, "Invalid job id"))
        rc = error("scancel: %s", hx_slurm_chomp(err));
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
    int st = hx_slurm_run_cmd(argv, &out, &err);
    if (st < 0) goto done;
    char *id = st == 0 ? parse_job_id(out) : NULL;
    if (!id) {
        error("sbatch for stage '%s' (key %.12s) failed: %s%s", in->stage_name, in->key, hx_slurm_chomp(err),
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
        if (hx_slurm_scancel(ids) < 0) log_warn("%s", hx_last_error());
        json_decref(ids);
        error("%s", why);
        free(why);
    }
    free(dir);
    free(root);
    return rc;
}
