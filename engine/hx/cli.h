/* cli.h - what the interpreter's subcommands share: options, loading with exit codes, plan states. */
#ifndef HX_CLI_H
#define HX_CLI_H

#include <jansson.h>
#include "engine/hx/plan.h"
#include "engine/hx/recipe.h"
#include "engine/hx/store.h"

typedef struct hx_cli {
    const char *recipe;       /* first positional argument */
    const char **args;        /* all positional arguments */
    int n_args;
    const char **sets;        /* -S k=v / -S ~k, in order */
    int n_sets;
    const char *store_dir;    /* --store, else $HX_STORE, else .hx */
    const char *device;       /* --device (default auto) */
    int json, strict, verify, dry_run, recompute, repair;
    int jobs, threads, keep;  /* --jobs (1), --threads (0: automatic), --keep (-1: all) */
    int jobs_given;           /* --jobs was on the command line (else --gpu-share sets the default) */
    int gpu_share;            /* --gpu-share: GPU stages run at once on each GPU (1) */
} hx_cli;

/*
 * Parse argv (argv[0] is the subcommand) accepting the options named in ALLOWED, a space-separated
 * list of: S store json strict verify device jobs gpu-share threads keep dry-run recompute repair. Dies with status 2 on a bad
 * option or a wrong number of positionals (min_pos..max_pos).
 */
void hx_cli_parse(hx_cli *c, int argc, char **argv, const char *allowed, int min_pos, int max_pos);
void hx_cli_release(hx_cli *c);
/* The value of --threads for hx CMD: an integer from 1 to HX_MAX_THREADS (base.h), else dies with status 2.
 * Every command's --threads goes through here. */
int hx_cli_threads(const char *cmd, const char *val);

void hx_cli_open_store(const hx_cli *c, hx_store *s);            /* dies with status 3 */
char *hx_cli_binary_digest(void);                                 /* sha256 of /proc/self/exe */
void hx_cli_load(const hx_cli *c, hx_recipe *r, hx_plan *p);      /* dies with status 2 */

/* State of every instance against the store and the recipe's history: "cached", "new" or "stale",
 * with a one-line reason. STATES gets p->n objects {state, reason, previous (history record)}. */
json_t *hx_cli_plan_states(const hx_plan *p, const hx_store *s);
/* One line per external input of IN (path parameters: "external FIELD: PATH sha256 ..."), indented. */
void hx_cli_print_external(const hx_instance *in, int indent);
/* The hash components of instance I that differ from a previous execution's record, as lines. */
json_t *hx_cli_diff(const hx_plan *p, int i, const json_t *prev);

#endif
