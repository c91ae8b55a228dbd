/* base.h - allocation, errors, logging and progress, file helpers: the floor every layer stands on. */
#ifndef HX_BASE_H
#define HX_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <setjmp.h>

#define HX_VERSION "0.1.0"

#if defined(__GNUC__)
#define HX_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define HX_NORETURN __attribute__((noreturn))
#else
#define HX_PRINTF(a, b)
#define HX_NORETURN
#endif

/* Allocation helpers: die on out-of-memory, never return NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrfmt(const char *fmt, ...) HX_PRINTF(1, 2);

/* A growable string, NUL-terminated once anything was added; start from {0}. */
typedef struct hx_sbuf {
    char *s;
    size_t len, cap;
} hx_sbuf;
void hx_sb_add(hx_sbuf *b, const char *s, size_t n);
void hx_sb_puts(hx_sbuf *b, const char *s);
void hx_sb_putc(hx_sbuf *b, char c);
void hx_sb_printf(hx_sbuf *b, const char *fmt, ...) HX_PRINTF(2, 3);
char *hx_sb_take(hx_sbuf *b); /* the string (never NULL); b is reset */
void hx_sb_free(hx_sbuf *b);

/*
 * Three levels of failure (git's die/error/BUG):
 *  - die():   CLI layer only; prints "fatal: ..." and exits with the given status.
 *  - error(): library code; records the message (hx_last_error), prints nothing, returns -1.
 *             Callers add context with error_prefix() or pass it up.
 *  - BUG():   a broken invariant; prints file:line and aborts.
 */
HX_NORETURN void die(int status, const char *fmt, ...) HX_PRINTF(2, 3);
int error(const char *fmt, ...) HX_PRINTF(1, 2);
int error_prefix(const char *fmt, ...) HX_PRINTF(1, 2); /* prepend "<ctx>: " to the last error */
const char *hx_last_error(void);
void hx_clear_error(void);
HX_NORETURN void hx_bug(const char *file, int line, const char *fmt, ...) HX_PRINTF(3, 4);
#define BUG(...) hx_bug(__FILE__, __LINE__, __VA_ARGS__)

/*
 * Out of memory (xmalloc and the kernels' allocators): inside a stage (hx_stage_call sets a trap on its
 * thread) it is that stage's failure: hx_oom records the message and jumps back to the trap, and the
 * stage's memory is abandoned. Elsewhere, or inside an OpenMP parallel region (which must not be left by
 * a jump), it exits with status 1 as die() would.
 */
typedef struct hx_oom_trap {
    jmp_buf jb;
    struct hx_oom_trap *prev;
} hx_oom_trap;
void hx_oom_trap_push(hx_oom_trap *t); /* then: if (setjmp(t->jb)) { ...the stage ran out... } */
void hx_oom_trap_pop(hx_oom_trap *t);
HX_NORETURN void hx_oom(const char *fmt, ...) HX_PRINTF(1, 2);

/* Exit statuses of the CLI (docs/cli.md); 130 is the shell's 128 + SIGINT. */
enum { HX_EXIT_OK = 0, HX_EXIT_STAGE = 1, HX_EXIT_USAGE = 2, HX_EXIT_STORE = 3, HX_EXIT_INTERRUPTED = 130 };

/*
 * Logging: every message goes through here. The sink is chosen once by the CLI:
 * human text on stderr, or JSON-lines events on stderr (--json).
 */
typedef enum { HX_LOG_DEBUG, HX_LOG_INFO, HX_LOG_WARN, HX_LOG_ERROR } hx_log_level;
void hx_log_set_json(int on);
int hx_log_is_json(void);
void hx_log_set_level(hx_log_level lvl);
void hx_log(hx_log_level lvl, const char *fmt, ...) HX_PRINTF(2, 3);
#define log_info(...) hx_log(HX_LOG_INFO, __VA_ARGS__)
#define log_warn(...) hx_log(HX_LOG_WARN, __VA_ARGS__)
#define log_debug(...) hx_log(HX_LOG_DEBUG, __VA_ARGS__)
/* A raw JSON event line (only emitted in --json mode): {"event": name, ...fields}. fields_json is an
 * object body without braces, e.g. "\"stage\":\"teacher\",\"loss\":2.1", or NULL. */
void hx_log_event(const char *name, const char *fields_json);
/*
 * The stage instance the calling thread works for ("align_block[masking=completion_only]"; NULL: none), set by
 * the executor around each instance: every log and progress line of the thread then starts with "[NAME] "
 * (--json: an "instance" field), so a stage's messages name their instance without saying it themselves.
 */
void hx_log_scope_set(const char *name);
const char *hx_log_scope(void); /* "" when none */

/*
 * Progress of long work: a live bar on a terminal, a line every few seconds otherwise,
 * a JSON event in --json mode. `unit` names what is counted ("tok", "step", "item").
 */
typedef struct hx_progress {
    char label[64];
    char unit[16];
    double total, done, t0, last_print;
    double rate_units;   /* units per second over the whole run */
    double eta;          /* seconds left as last printed (< 0: unknown) */
    int given_eta;       /* hx_progress_set_eta: the caller's ETA is printed, and no rate of its units */
    char extra[160];     /* e.g. "loss 2.314" */
} hx_progress;
void hx_progress_begin(hx_progress *p, const char *label, double total, const char *unit);
void hx_progress_update(hx_progress *p, double done, const char *extra_fmt, ...) HX_PRINTF(3, 4);
void hx_progress_end(hx_progress *p);
/* The ETA to print from now on (< 0: unknown), for work whose units do not take equal time (a run's stages). */
void hx_progress_set_eta(hx_progress *p, double eta_s);
/* A sink for the calling thread's progress: called on every update and by _end (final), with the rate and ETA
 * up to date, e.g. to keep a live record (the executor's partial/<key>/progress.json; it limits how often). NULL:
 * none. */
typedef void (*hx_progress_sink)(void *ud, const hx_progress *p, int final);
void hx_progress_set_sink(hx_progress_sink fn, void *ud);

/* Worker threads: REQUESTED, or when it is <= 0 OMP_NUM_THREADS (if positive) else every online CPU;
 * always within [1, HX_MAX_THREADS] (libgomp crashes creating 100000 threads). The one place that
 * decides a thread count: the CLI checks --threads against HX_MAX_THREADS, backends call this. */
#define HX_MAX_THREADS 1024
int hx_threads(int requested);

/* Time in seconds (monotonic). */
double hx_now(void);

/*
 * Input limits: every file hx reads whole is a regular file (not a device, FIFO or directory, after
 * symlinks) of at most its kind's cap; standard input is capped the same way. The table lives in
 * files.c (docs/architecture.md, "Input limits"); HX_MAX_<KIND>_MB overrides one cap, e.g.
 * HX_MAX_DATA_MB=65536.
 */
typedef enum {
    HX_IN_RECIPE, /* recipe YAML files and their includes */
    HX_IN_DOC,    /* JSON documents: configs, tokenizers, manifests, run records, indexes, training state */
    HX_IN_DATA,   /* everything else read whole: JSONL and text corpora, eval items, score/tokenize inputs */
    HX_IN_STREAM, /* read in pieces (archives, digests): no cap, only the regular-file check */
    HX_IN_KINDS
} hx_input_kind;
size_t hx_input_limit(hx_input_kind kind); /* bytes; SIZE_MAX for HX_IN_STREAM */
const char *hx_input_kind_name(hx_input_kind kind); /* "recipe", "doc", "data", "stream" */

/* Files. All return 0 on success or error(...) on failure with the path in the message. */
/* Read PATH whole (NUL-terminated, caller frees): a regular file within KIND's cap. */
int hx_read_input(const char *path, hx_input_kind kind, char **data, size_t *len);
int hx_read_file(const char *path, char **data, size_t *len); /* hx_read_input(path, HX_IN_DATA, ...) */
/* Read an open stream (standard input) to its end, within KIND's cap; NAME is for messages. */
int hx_read_stream(int fd, const char *name, hx_input_kind kind, char **data, size_t *len);
/* Open PATH for reading as a regular file within KIND's cap (for readers that stream or mmap);
 * *size gets its size. Returns the fd, or error(...). */
int hx_open_input(const char *path, hx_input_kind kind, size_t *size);
/* A JSON document (HX_IN_DOC) parsed with jansson's FLAGS; NULL with error("path:line:col: ...").
 * The return is a json_t * (base.h does not include jansson.h). */
struct json_t;
struct json_t *hx_read_json(const char *path, size_t flags);

/* JSON has no NaN or Infinity: every writer puts a double through one of these, and a non-finite one
 * is written as null (jansson's json_real refuses it: a NULL that json_pack turns into a crash and
 * json_object_set_new into a silently dropped key). */
struct json_t *hx_json_num(double v);                          /* json_real(v), or json_null() */
const char *hx_json_numf(char buf[48], const char *fmt, double v); /* snprintf(fmt, v), or "null" */
/* The string value of o[k]; NULL if o is NULL, k is absent or not a string. */
const char *hx_json_str(const struct json_t *o, const char *k);
int hx_write_file(const char *path, const void *data, size_t len); /* write + fsync */
int hx_write_file_atomic(const char *path, const void *data, size_t len); /* tmp + fsync + rename */
int hx_mkdir_p(const char *path);
int hx_rm_rf(const char *path);
int hx_file_exists(const char *path);
int hx_is_dir(const char *path);
int hx_fsync_dir(const char *path);
char *hx_path_join(const char *a, const char *b); /* xmalloc'd */

/* Pinned data packages (docs/design.md section 7): the third_party/ directory holding packages.lock and the .tgz
 * files ($HX_THIRD_PARTY, else next to the binary: build/hx or build/tests/x, else ./third_party), and a walk
 * over a .tgz's regular members read in place. want (NULL: every member) selects; fn gets the member's bytes
 * (NUL-terminated, valid during the call) and returns 0 to go on, 1 to stop, -1 on error. */
int hx_third_party_dir(char **out);
typedef int (*hx_entry_fn)(const char *entry, const char *data, size_t len, void *ud);
int hx_tgz_each(const char *tgz, int (*want)(const char *entry, void *ud), hx_entry_fn fn, void *ud);

/* SHA-256 (libcrypto). hex must hold 65 bytes. */
void hx_sha256_hex(const void *data, size_t len, char hex[65]);
int hx_sha256_file_hex(const char *path, char hex[65]);
/* The same incrementally (bytes hashed while they stream through): init, update..., then final (or abort). */
struct evp_md_ctx_st;
typedef struct hx_sha256 {
    struct evp_md_ctx_st *ctx;
} hx_sha256;
void hx_sha256_init(hx_sha256 *h);
void hx_sha256_update(hx_sha256 *h, const void *p, size_t n);
void hx_sha256_final(hx_sha256 *h, char hex[65]);
void hx_sha256_abort(hx_sha256 *h);

/* FNV-1a, 64-bit: hx_fnv1a(HX_FNV1A_INIT, p, n) hashes n bytes; pass the result back in to go on. Not a
 * cryptographic hash: the hash tables' and the seeded streams' (evalsuite, world) one cheap hash. */
#define HX_FNV1A_INIT 1469598103934665603ull
static inline uint64_t hx_fnv1a(uint64_t h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
    return h;
}

/* Deterministic RNG (splitmix64 seeding + xoshiro256**): reproducible across machines. */
typedef struct { uint64_t s[4]; } hx_rng;
void hx_rng_seed(hx_rng *r, uint64_t seed);
uint64_t hx_rng_u64(hx_rng *r);
double hx_rng_uniform(hx_rng *r);         /* [0, 1) */
float hx_rng_normal(hx_rng *r);           /* N(0, 1), Box-Muller */
uint64_t hx_rng_below(hx_rng *r, uint64_t n); /* [0, n) unbiased */

#endif
