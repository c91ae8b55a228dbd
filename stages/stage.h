/* stage.h - the contract between the interpreter and stage kinds: a registry row per kind
 * (name, version, parameter schema, input roles, run function) and the context a run receives. */
#ifndef HX_STAGE_H
#define HX_STAGE_H

#include <jansson.h>
#include "base/base.h"

/* Parameter types of a stage kind's schema. */
typedef enum {
    HX_T_INT,     /* JSON integer */
    HX_T_NUM,     /* JSON number (integers accepted and normalised) */
    HX_T_BOOL,
    HX_T_STR,     /* string; `allowed` may restrict it */
    HX_T_LIST,    /* list of anything (element checks are the kind's job) */
    HX_T_STRLIST, /* list of strings; `allowed` restricts each element */
    HX_T_MAP,     /* free-form object (kind validates) */
    HX_T_ANY,     /* scalar or list: e.g. `layers: paper` or `layers: [0, 2]` */
    HX_T_PATH,    /* an external input: a file or directory outside the store, relative to the recipe's
                   * folder; its content is hashed into the key and the stage gets the absolute path.
                   * "" is no path; `allowed` lists names that are not paths (e.g. "qwen3") */
    HX_T_PATHLIST, /* a list of HX_T_PATH */
} hx_type;

/* One field of a stage kind's `with:` schema (redis-style command descriptors as data). */
typedef struct hx_field {
    const char *name;
    hx_type type;
    const char *default_json; /* JSON text of the default, or NULL: the field is required */
    const char *allowed;      /* "a|b|c" for strings / string lists, or NULL */
    const char *doc;          /* one line for `hx help KIND` and docs */
} hx_field;

/* One input role of a stage kind. */
typedef struct hx_role {
    const char *name;
    const char *accepts;      /* "kind1|kind2": kinds of stages whose artifact fits, or NULL for any */
    int optional;
    const char *doc;
} hx_role;

struct nn_engine; /* the shared engine (nn); opaque to the interpreter */

/*
 * What one execution of a stage instance receives. The stage writes its outputs under out_dir
 * (a private work directory; it may hold the stage's own resume checkpoints from an earlier,
 * killed attempt), adds metrics, and returns 0 or error(...).
 */
typedef struct hx_stage_ctx {
    const char *stage_name;         /* name in the recipe, for messages */
    const char *key;                /* 64-hex store key of this instance */
    json_t *with;                   /* resolved parameters, defaults filled (borrowed) */
    const char *out_dir;            /* write outputs here */
    const char *ckpt_dir;           /* resume checkpoints: a sibling of out_dir (partial/<key>/ckpt), kept
                                     * across a killed run and never copied into the store */
    int n_inputs;
    const char *const *input_roles; /* role names */
    const char *const *input_dirs;  /* artifact directory of the stage bound to each role */
    const char *const *input_keys;  /* store keys of those stages */
    struct nn_engine *engine;       /* shared engine (models stay resident across stages); hx_stage_call keeps
                                     * it only if it lives on `device` */
    const char *device;             /* "cpu", "cuda:0", "guard": where the stage computes (the executor's choice,
                                     * recorded in the manifest) */
    int threads;
    int recompute;                  /* hx run --recompute: training keeps only layer inputs (not in the key:
                                     * the results are bit-identical) */
    json_t *metrics;                /* object; the stage adds its metrics (owned by the caller) */
    volatile int *interrupted;      /* set by SIGINT: stop at a safe point, return error */
    int out_of_memory;              /* set by hx_stage_call: the stage failed by running out of memory (its
                                     * allocations, and the shared engine's state, were abandoned) */
} hx_stage_ctx;

typedef struct hx_stage_kind {
    const char *name;
    int version;                    /* bump by hand when the semantics change (part of the key) */
    const char *doc;
    const hx_field *fields;         /* terminated by {NULL} */
    const hx_role *roles;           /* terminated by {NULL} */
    int needs_gpu;                  /* 1: prefers a GPU; executor gives it one device */
    int (*run)(hx_stage_ctx *ctx);
    /* Optional: rewrite, in WITH (validated, defaults filled), a parameter the run ignores into the value it
     * uses, so that two arms that run the same get the same key (the plan calls it before keying). */
    void (*canon)(json_t *with);
} hx_stage_kind;

/* The registry: every kind linked into this binary (stages/registry.c). */
const hx_stage_kind *hx_stage_kind_find(const char *name);
const hx_stage_kind *const *hx_stage_kinds(void); /* NULL-terminated */

/* Extra kinds (test-only kinds of build/hx-test, kinds defined by unit tests): a NULL-terminated
 * list searched after the built-in ones. Call once, before any plan is built. */
void hx_stage_kinds_add(const hx_stage_kind *const *extra);

/* The one protected call point through which the executor runs a stage: clears the error state, keeps the
 * shared engine only if it lives on ctx->device, refuses kernel knobs that would change the results
 * (nn_engine_env_check), calls kind->run, and turns a failure without a message into one naming the stage. Out of
 * memory inside the stage (hx_oom, base.h) returns here as the stage's failure (ctx->out_of_memory). 0 or -1. */
int hx_stage_call(const hx_stage_kind *kind, hx_stage_ctx *ctx);
/* The backend a stage computes on: the shared engine's, or its own on ctx->device (*own = 1: the caller frees it).
 * Always on ctx->device. NULL + error() if the device cannot be opened. */
struct k_backend *hx_stage_backend(hx_stage_ctx *c, int *own);
/* Every HX_KDA_* / HX_CUDA_* variable set (name -> value) for the manifest, or NULL if none. */
json_t *hx_stage_env(void);

/* Helpers for kinds reading their parameters (values are validated and defaulted before run). */
long long hx_with_int(const hx_stage_ctx *c, const char *field);
double hx_with_num(const hx_stage_ctx *c, const char *field);
int hx_with_bool(const hx_stage_ctx *c, const char *field);
const char *hx_with_str(const hx_stage_ctx *c, const char *field);
json_t *hx_with_json(const hx_stage_ctx *c, const char *field);
const char *hx_input_dir(const hx_stage_ctx *c, const char *role); /* NULL if not bound */
const char *hx_input_key(const hx_stage_ctx *c, const char *role);

#endif
