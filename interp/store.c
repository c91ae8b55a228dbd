/* store.c - the content-addressed store on disk: layout, keys, locks and pins (entries: store_entry.c, run records:
 * store_runs.c, gc: store_gc.c). */
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

int hx_store_is_key(const char *k)
{
    return strlen(k) == 64 && strspn(k, "0123456789abcdef") == 64;
}

int hx_store_rel_ok(const char *rel)
{
    size_t n = strlen(rel);
    if (!n || n > HX_STORE_REL_MAX || rel[0] == '/') return 0;
    for (const char *c = rel; *c;) {
        size_t k = strcspn(c, "/");
        if (k == 0 || k > 255) return 0;
        if ((k == 1 && c[0] == '.') || (k == 2 && c[0] == '.' && c[1] == '.')) return 0;
        for (size_t i = 0; i < k; i++)
            if ((unsigned char)c[i] < 0x20 || c[i] == 0x7f || c[i] == '\\') return 0;
        c += k;
        if (*c == '/' && !*++c) return 0; /* trailing '/' */
    }
    return 1;
}

int hx_store_open(hx_store *s, const char *root)
{
    memset(s, 0, sizeof *s);
    s->root = xstrdup(root);
    static const char *const dirs[] = {"store", "partial", "locks", "runs", "quarantine"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        char *d = hx_path_join(root, dirs[i]);
        int rc = hx_mkdir_p(d);
        free(d);
        if (rc < 0) {
            error_prefix("store '%s'", root);
            hx_store_release(s);
            return -1;
        }
    }
    return 0;
}

void hx_store_release(hx_store *s)
{
    free(s->root);
    s->root = NULL;
}

char *hx_store_entry_dir(const hx_store *s, const char *key)
{
    return xstrfmt("%s/store/%.2s/%s", s->root, key, key);
}

char *hx_store_report_dir(const hx_store *s, const char *run_id) { return xstrfmt("%s/reports/%s", s->root, run_id); }

char *hx_store_live_path(const hx_store *s, const char *key) { return xstrfmt("%s/partial/%s/progress.json", s->root, key); }

char *hx_store_manifest_path(const hx_store *s, const char *key)
{
    return xstrfmt("%s/store/%.2s/%s/manifest.json", s->root, key, key);
}

int hx_store_has(const hx_store *s, const char *key)
{
    if (!hx_store_is_key(key)) return 0;
    char *m = hx_store_manifest_path(s, key);
    int ok = hx_file_exists(m);
    free(m);
    return ok;
}

json_t *hx_store_manifest(const hx_store *s, const char *key)
{
    if (!hx_store_is_key(key)) return (void)error("'%s' is not a store key (64 hex digits)", key), NULL;
    char *m = hx_store_manifest_path(s, key);
    json_t *v = hx_read_json(m, 0);
    free(m);
    return v;
}

char *hx_store_find_key(const hx_store *s, const char *prefix)
{
    size_t n = strlen(prefix);
    if (n < 4 || n > 64 || strspn(prefix, "0123456789abcdef") != n)
        return (void)error("'%s' is neither a run id nor a key (at least 4 hex digits)", prefix), NULL;
    char *dir = xstrfmt("%s/store/%.2s", s->root, prefix);
    DIR *d = opendir(dir);
    char *found = NULL;
    int count = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (hx_store_is_key(e->d_name) && !strncmp(e->d_name, prefix, n)) {
                if (!found) found = xstrdup(e->d_name);
                count++;
            }
        closedir(d);
    }
    free(dir);
    if (count == 1) return found;
    free(found);
    if (count == 0) return (void)error("no store entry with key %s in %s", prefix, s->root), NULL;
    return (void)error("key prefix %s is ambiguous (%d entries); give more digits", prefix, count), NULL;
}

/* ---- locks ---- */

int hx_store_lock(const hx_store *s, const char *key, int wait, volatile int *interrupted, hx_lock *l)
{
    char *p = xstrfmt("%s/locks/%s.lock", s->root, key);
    /* group-writable (under umask 002): in a store shared by a group, every member locks every key. Opened for
     * writing because NFS turns flock into a POSIX write lock, which needs a writable descriptor. */
    l->fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0664);
    if (l->fd < 0) {
        error("cannot open lock '%s': %s", p, strerror(errno));
        free(p);
        return -1;
    }
    int told = 0;
    for (;;) {
        if (flock(l->fd, LOCK_EX | LOCK_NB) == 0) break;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            /* NFS mounted with nolock, Lustre without -o flock: no lock would mean executing keys twice */
            error("cannot lock '%s': %s%s", p, strerror(errno),
                  errno == ENOLCK || errno == EOPNOTSUPP ? " (the store's file system does not support flock: "
                                                           "docs/cluster.md says which mounts do)" : "");
            close(l->fd);
            l->fd = -1;
            free(p);
            return -1;
        }
        if (!wait) {
            close(l->fd);
            l->fd = -1;
            free(p);
            return 1;
        }
        if (interrupted && *interrupted) {
            close(l->fd);
            l->fd = -1;
            free(p);
            return error("interrupted while waiting for the lock of %.12s", key);
        }
        if (!told++) log_info("waiting for %.12s: another hx process is executing it", key);
        usleep(20000);
    }
    free(p);
    return 0;
}

/* The pin file of KEY: readers hold it shared, removers (gc, discard, quarantine) exclusively. */
static int pin_open(const hx_store *s, const char *key)
{
    char *p = xstrfmt("%s/locks/%s.pin", s->root, key);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) error("cannot open pin '%s': %s", p, strerror(errno));
    free(p);
    return fd;
}

int hx_store_pin(const hx_store *s, const char *key, hx_lock *l)
{
    l->fd = pin_open(s, key);
    if (l->fd < 0) return -1;
    /* A remover holds the pin exclusively only for the moment it renames the entry away. */
    while (flock(l->fd, LOCK_SH) < 0)
        if (errno != EINTR) {
            int e = errno;
            hx_store_unlock(l);
            return error("cannot pin %.12s: %s", key, strerror(e));
        }
    return 0;
}

/* 0: no reader holds KEY (the pin is now held exclusively in *l), 1: a stage is reading it, -1: error. */
int hx_store_pin_exclusive(const hx_store *s, const char *key, hx_lock *l)
{
    l->fd = pin_open(s, key);
    if (l->fd < 0) return -1;
    if (flock(l->fd, LOCK_EX | LOCK_NB) == 0) return 0;
    hx_store_unlock(l);
    return 1;
}

void hx_store_unlock(hx_lock *l)
{
    if (l->fd >= 0) close(l->fd); /* closing releases the flock */
    l->fd = -1;
}
