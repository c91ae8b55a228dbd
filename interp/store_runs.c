/* store_runs.c - run records: ids, atomic writes, the process that wrote one (alive?), time order, checks, history. */
#include "interp/store_internal.h"

#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "base/base.h"
#include "base/sort.h"
#include "interp/canon.h"

/* ---- run records ---- */

char *hx_store_new_run_id(const hx_store *s)
{
    (void)s;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    hx_rng r;
    hx_rng_seed(&r, (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_sec);
    char buf[32];
    strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
    /* Milliseconds, then a random byte: ids sort in creation order, also within one second. */
    return xstrfmt("%s-%03ld%02x", buf, ts.tv_nsec / 1000000, (unsigned)(hx_rng_u64(&r) & 0xff));
}

int hx_store_is_run_id(const char *id)
{
    return strlen(id) == 21 && strspn(id, "0123456789-abcdef") == 21 && id[8] == '-' && id[15] == '-';
}

/* runs/<id>/run.json, atomically; runs/latest moves to ID when MOVE_LATEST. */
static int write_run(const hx_store *s, const char *id, const json_t *run, int move_latest)
{
    char *dir = xstrfmt("%s/runs/%s", s->root, id);
    char *file = hx_path_join(dir, "run.json");
    char *tmp = xstrfmt("%s/runs/.latest.%ld", s->root, (long)getpid());
    char *latest = xstrfmt("%s/runs/latest", s->root);
    int rc = -1;
    char *text = json_dumps(run, JSON_INDENT(2));
    if (hx_mkdir_p(dir) < 0) goto out;
    size_t tl = strlen(text);
    text = xrealloc(text, tl + 2);
    memcpy(text + tl, "\n", 2);
    if (hx_write_file_atomic(file, text, tl + 1) < 0) goto out;
    if (!move_latest) {
        rc = 0;
        goto out;
    }
    unlink(tmp);
    if (symlink(id, tmp) < 0 || rename(tmp, latest) < 0) {
        error("cannot point '%s' at %s: %s", latest, id, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    free(text);
    free(dir);
    free(file);
    free(tmp);
    free(latest);
    return rc;
}

int hx_store_write_run(const hx_store *s, const char *id, const json_t *run) { return write_run(s, id, run, 1); }

int hx_store_update_run(const hx_store *s, const char *id, const json_t *run) { return write_run(s, id, run, 0); }

json_t *hx_store_read_run(const hx_store *s, const char *id_in)
{
    char *id = NULL;
    if (!strcmp(id_in, "latest")) {
        char *l = xstrfmt("%s/runs/latest", s->root), buf[64];
        ssize_t n = readlink(l, buf, sizeof buf - 1);
        free(l);
        if (n <= 0) return (void)error("no runs yet in %s", s->root), NULL;
        buf[n] = 0;
        id = xstrdup(buf);
    } else {
        id = xstrdup(id_in);
    }
    if (!hx_store_is_run_id(id)) {
        error("'%s' is not a run id (YYYYmmdd-HHMMSS-mmmxx)", id);
        free(id);
        return NULL;
    }
    char *p = xstrfmt("%s/runs/%s/run.json", s->root, id);
    json_t *v = hx_read_json(p, 0);
    free(p);
    free(id);
    return v;
}

/* ---- process identity: is the process that wrote a "running" record still alive? ---- */

static void read_line(const char *path, char *buf, size_t n)
{
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (!fgets(buf, (int)n, f)) buf[0] = 0;
    fclose(f);
    buf[strcspn(buf, "\n")] = 0;
}

/* Start time of PID in clock ticks since boot (/proc/PID/stat field 22), or -1. */
static long long proc_start(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    read_line(path, buf, sizeof buf);
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    if (!p) return -1;
    long long v = -1;
    int field = 2;
    for (char *t = strtok(p + 1, " "); t; t = strtok(NULL, " "))
        if (++field == 22) {
            v = atoll(t);
            break;
        }
    return v;
}

json_t *hx_store_process_self(void)
{
    char host[256] = "?", boot[64];
    gethostname(host, sizeof host - 1);
    read_line("/proc/sys/kernel/random/boot_id", boot, sizeof boot);
    return json_pack("{s:I,s:s,s:s,s:I}", "pid", (json_int_t)getpid(), "host", host, "boot_id", boot, "start_ticks",
                     (json_int_t)proc_start((long)getpid()));
}

int hx_store_run_alive(const json_t *run)
{
    const char *st = json_string_value(json_object_get(run, "status"));
    json_t *pr = json_object_get(run, "process");
    if (!st || strcmp(st, "running")) return 0;
    /* A Slurm run's work is its jobs, not the submitting process (--detach ends it): its record is refreshed
     * from the scheduler (hx runs, hx show), and until it ends its entries stay pinned. */
    const char *ex = json_string_value(json_object_get(run, "executor"));
    if (ex && !strcmp(ex, "slurm")) return -1;
    if (!json_is_object(pr)) return 0; /* a record from before hx wrote its process: nothing to go by */
    char host[256] = "?", boot[64];
    gethostname(host, sizeof host - 1);
    read_line("/proc/sys/kernel/random/boot_id", boot, sizeof boot);
    const char *rh = json_string_value(json_object_get(pr, "host")), *rb = json_string_value(json_object_get(pr, "boot_id"));
    if (!rh || strcmp(rh, host)) return -1; /* another machine: cannot tell */
    if (!rb || strcmp(rb, boot)) return 0;  /* this machine rebooted since */
    long pid = (long)json_integer_value(json_object_get(pr, "pid"));
    if (pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH)) return 0;
    return proc_start(pid) == json_integer_value(json_object_get(pr, "start_ticks")); /* else: the pid was reused */
}

/* ---- run records in time order ---- */

#define FUTURE_SLACK_S 600 /* clocks of two machines may differ; a start further ahead is not believed */

long long hx_store_run_time(const json_t *run)
{
    const char *t = json_string_value(json_object_get(run, "started"));
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = t ? strptime(t, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
    if (!end || *end) return -1;
    long long v = (long long)timegm(&tm);
    if (v < 946684800LL || v > (long long)time(NULL) + FUTURE_SLACK_S) return -1; /* before 2000 or in the future */
    return v;
}

typedef struct run_ord {
    char *id;
    long long t; /* recorded start, -1 when missing or not believable (sorts first: oldest) */
} run_ord;

static int cmp_run(const void *a, const void *b)
{
    const run_ord *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return strcmp(x->id, y->id);
}

json_t *hx_store_list_runs(const hx_store *s)
{
    char *dir = xstrfmt("%s/runs", s->root);
    DIR *d = opendir(dir);
    free(dir);
    json_t *out = json_array();
    if (!d) return out;
    run_ord *ids = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (hx_store_is_run_id(e->d_name)) {
            if (n == cap) ids = xrealloc(ids, (cap = cap ? 2 * cap : 16) * sizeof *ids);
            ids[n].id = xstrdup(e->d_name);
            json_t *run = hx_store_read_run(s, e->d_name);
            ids[n].t = run ? hx_store_run_time(run) : -1;
            json_decref(run);
            n++;
        }
    closedir(d);
    hx_clear_error();
    if (n) qsort(ids, n, sizeof *ids, cmp_run);
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(out, json_string(ids[i].id));
        free(ids[i].id);
    }
    free(ids);
    return out;
}

int hx_store_add_run(const hx_store *s, const char *id, const char *text, size_t len)
{
    if (!hx_store_is_run_id(id)) return error("'%s' is not a run id (YYYYmmdd-HHMMSS-mmmxx)", id);
    char *dir = xstrfmt("%s/runs/%s", s->root, id);
    char *file = hx_path_join(dir, "run.json");
    char *latest = xstrfmt("%s/runs/latest", s->root);
    char *tmp = xstrfmt("%s/runs/.latest.%ld", s->root, (long)getpid());
    int rc = -1;
    if (hx_file_exists(file)) {
        rc = 1;
        goto out;
    }
    if (hx_mkdir_p(dir) < 0 || hx_write_file_atomic(file, text, len) < 0) goto out;
    rc = 0;
    /* latest moves only to a record whose recorded start is believable and newer than latest's. */
    json_t *mine = hx_store_read_run(s, id), *cur = hx_store_read_run(s, "latest");
    long long tm = mine ? hx_store_run_time(mine) : -1, tc = cur ? hx_store_run_time(cur) : -1;
    int have_latest = cur != NULL;
    json_decref(mine);
    json_decref(cur);
    hx_clear_error();
    if (tm >= 0 && (!have_latest || tm > tc)) {
        unlink(tmp);
        if (symlink(id, tmp) < 0 || rename(tmp, latest) < 0) {
            rc = error("cannot point '%s' at %s: %s", latest, id, strerror(errno));
            unlink(tmp);
        }
    }
out:
    free(dir);
    free(file);
    free(latest);
    free(tmp);
    return rc;
}

int hx_store_check_runs(const hx_store *s, json_t *problems, json_t *bad)
{
    char *dir = xstrfmt("%s/runs", s->root);
    DIR *d = opendir(dir);
    int count = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *id = e->d_name;
        if (id[0] == '.' || !strcmp(id, "latest")) continue;
        int before = count;
        if (!hx_store_is_run_id(id)) {
            hx_store_problem(problems, &count, "%s/%s: not a run id (YYYYmmdd-HHMMSS-mmmxx)", dir, id);
        } else {
            json_t *run = hx_store_read_run(s, id);
            if (!run) {
                hx_store_problem(problems, &count, "%s", hx_last_error());
            } else {
                const char *rid = json_string_value(json_object_get(run, "run_id"));
                const char *st = json_string_value(json_object_get(run, "status"));
                json_t *stages = json_object_get(run, "stages");
                if (!rid || strcmp(rid, id)) hx_store_problem(problems, &count, "%s/%s/run.json: run_id '%s' is not its directory's name", dir, id, rid ? rid : "");
                if (hx_store_run_time(run) < 0)
                    hx_store_problem(problems, &count, "%s/%s/run.json: started '%s' is missing, malformed or in the future", dir, id,
                            json_string_value(json_object_get(run, "started")) ?: "");
                if (!st) hx_store_problem(problems, &count, "%s/%s/run.json: no status", dir, id);
                if (!json_is_array(stages)) hx_store_problem(problems, &count, "%s/%s/run.json: no stages list", dir, id);
                for (size_t j = 0; j < json_array_size(stages); j++) {
                    const char *k = json_string_value(json_object_get(json_array_get(stages, j), "key"));
                    if (!k || !hx_store_is_key(k)) {
                        hx_store_problem(problems, &count, "%s/%s/run.json: stage %zu has no valid key", dir, id, j);
                        break;
                    }
                }
                json_decref(run);
            }
        }
        if (count > before && bad) json_array_append_new(bad, json_string(id));
    }
    if (d) closedir(d);
    char *l = xstrfmt("%s/latest", dir), target[128];
    ssize_t n = readlink(l, target, sizeof target - 1);
    if (n > 0) {
        target[n] = 0;
        char *f = xstrfmt("%s/%s/run.json", dir, target);
        if (!hx_store_is_run_id(target) || !hx_file_exists(f))
            hx_store_problem(problems, &count, "%s -> %s: no such run record", l, target);
        free(f);
    }
    free(l);
    free(dir);
    return count ? 1 : 0;
}

int hx_store_quarantine_run(const hx_store *s, const char *name, char **where)
{
    if (strchr(name, '/') || name[0] == '.') return error("'%s' is not a run record's directory", name);
    char *src = xstrfmt("%s/runs/%s", s->root, name);
    char *q = xstrfmt("%s/quarantine/runs", s->root);
    char *dest = xstrfmt("%s/%s.%ld-%ld", q, name, (long)time(NULL), (long)getpid());
    int rc = hx_mkdir_p(q) < 0 ? -1 : rename(src, dest) < 0 ? error("cannot move '%s' to '%s': %s", src, dest, strerror(errno)) : 0;
    if (rc == 0) hx_store_repoint_latest(s);
    if (rc == 0 && where) *where = xstrdup(dest);
    free(src);
    free(q);
    free(dest);
    return rc;
}

json_t *hx_store_history(const hx_store *s, const char *recipe_name, int max_runs)
{
    json_t *ids = hx_store_list_runs(s), *out = json_object();
    int read = 0;
    for (size_t i = json_array_size(ids); i-- > 0 && read < max_runs;) {
        const char *id = json_string_value(json_array_get(ids, i));
        json_t *run = hx_store_read_run(s, id);
        read++;
        if (!run) continue;
        const char *name = json_string_value(json_object_get(json_object_get(run, "recipe"), "name"));
        json_t *stages = json_object_get(run, "stages");
        if (name && !strcmp(name, recipe_name))
            for (size_t j = 0; j < json_array_size(stages); j++) {
                json_t *rec = json_array_get(stages, j);
                const char *st = json_string_value(json_object_get(rec, "state"));
                if (!st || (strcmp(st, "executed") && strcmp(st, "cached"))) continue;
                char *axes = hx_canon_dump(json_object_get(rec, "axes"));
                const char *stage = json_string_value(json_object_get(rec, "stage"));
                char *k = xstrfmt("%s|%s", stage ? stage : "", axes ? axes : "{}");
                if (!json_object_get(out, k)) {
                    json_t *c = json_deep_copy(rec);
                    json_object_set_new(c, "run_id", json_string(id));
                    json_object_set_new(out, k, c);
                }
                free(k);
                free(axes);
            }
        json_decref(run);
    }
    json_decref(ids);
    hx_clear_error();
    return out;
}
