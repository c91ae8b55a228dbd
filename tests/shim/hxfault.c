/* hxfault.c - LD_PRELOAD shim for fault-injection tests: the Nth write, fsync or rename on a file under a directory fails.
 *
 * HXFAULT_DIR=dir    only calls on files under dir count (by the fd's /proc/self/fd link, or rename's source path)
 * HXFAULT_OP=op      write | fsync | rename (fsync covers fdatasync)
 * HXFAULT_AT=N       the Nth counted call fails (1-based); 0 or unset: count only
 * HXFAULT_ERRNO=E    the errno of the failure (default EIO)
 * HXFAULT_COUNT=file at exit, append "<op> <calls counted>" to file (how many points a test has to try)
 * A failed write writes nothing; hx's own stdio (stderr) goes through libc's internal write and never counts. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[PATH_MAX];
static size_t dir_len;
static const char *op = "";
static long at;
static int fail_errno = EIO;
static long calls;

__attribute__((constructor)) static void init(void)
{
    const char *d = getenv("HXFAULT_DIR");
    if (d && !realpath(d, dir)) { /* not made yet (a new store): its parent resolved, then its name */
        char parent[PATH_MAX], res[PATH_MAX];
        const char *slash = strrchr(d, '/');
        snprintf(parent, sizeof parent, "%.*s", slash ? (int)(slash - d) : 1, slash ? d : ".");
        if (slash && realpath(parent[0] ? parent : "/", res)) snprintf(dir, sizeof dir, "%s%s", res, slash);
    }
    dir_len = strlen(dir);
    if (getenv("HXFAULT_OP")) op = getenv("HXFAULT_OP");
    if (getenv("HXFAULT_AT")) at = atol(getenv("HXFAULT_AT"));
    if (getenv("HXFAULT_ERRNO")) fail_errno = atoi(getenv("HXFAULT_ERRNO"));
}

__attribute__((destructor)) static void report(void)
{
    const char *f = getenv("HXFAULT_COUNT");
    if (!f || !*op) return;
    FILE *fp = fopen(f, "a");
    if (!fp) return;
    fprintf(fp, "%s %ld\n", op, calls);
    fclose(fp);
}

static int under_dir(const char *path)
{
    return dir_len && !strncmp(path, dir, dir_len) && (path[dir_len] == '/' || path[dir_len] == 0);
}

static int fd_under_dir(int fd)
{
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) return 0;
    target[n] = 0;
    return under_dir(target);
}

/* Is this call (of operation NAME, counted when it concerns DIR) the one to fail? */
static int fault(const char *name, int counts)
{
    if (strcmp(op, name) || !counts) return 0;
    long n = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
    if (at > 0 && n == at) {
        errno = fail_errno;
        return 1;
    }
    return 0;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    static ssize_t (*real)(int, const void *, size_t);
    if (!real) real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    if (fault("write", fd_under_dir(fd))) return -1;
    return real(fd, buf, n);
}

int fsync(int fd)
{
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    if (fault("fsync", fd_under_dir(fd))) return -1;
    return real(fd);
}

int fdatasync(int fd)
{
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    if (fault("fsync", fd_under_dir(fd))) return -1;
    return real(fd);
}

int rename(const char *from, const char *to)
{
    static int (*real)(const char *, const char *);
    if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    char abs[PATH_MAX];
    const char *dirname_end = strrchr(from, '/');
    int counts = 0;
    /* the source exists: resolve its folder (the file itself may be a symlink, e.g. runs/latest) */
    if (dirname_end) {
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%.*s", (int)(dirname_end - from), from);
        counts = realpath(parent[0] ? parent : "/", abs) && under_dir(abs);
    } else {
        counts = getcwd(abs, sizeof abs) && under_dir(abs);
    }
    if (fault("rename", counts)) return -1;
    return real(from, to);
}
