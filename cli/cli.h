/* cli.h - what the interpreter's subcommands share: the one option parser, loading with exit codes, plan states. */
#ifndef HX_CLI_H
#define HX_CLI_H

#include <jansson.h>
#include "interp/plan.h"
#include "interp/recipe.h"
#include "interp/store.h"

#include "cli/commands.h"

/* One option as given on the command line, in order. */
typedef struct hx_cli_occ {
    const hx_opt *opt;
    const char *val; /* NULL for a flag */
} hx_cli_occ;

/* A parsed command line: what every cmd_<name>() receives (main.c parses it against the command's table row). */
typedef struct hx_cli {
    const hx_cmd *cmd;
    const char *name;         /* "run", "bench kda": for messages */
    int argc;                 /* the command line as given, from the command name on */
    char **argv;
    hx_cli_occ *occ;          /* every option given, in order */
    int n_occ;
    const char *recipe;       /* first positional argument */
    const char **args;        /* all positional arguments */
    int n_args;
    /* The shared options, filled when the command has them: */
    const char **sets;        /* -S k=v / -S ~k, in order */
    int n_sets;
    const char *store_dir;    /* --store, else $HX_STORE, else .hx */
    const char *device;       /* --device (its row's default) */
    int json, strict, verify, dry_run, recompute, repair;
    int jobs, threads, keep;  /* --jobs (1), --threads (0: automatic), --keep (-1: all) */
    int jobs_given;           /* --jobs was on the command line (else --gpu-share sets the default) */
    int gpu_share;            /* --gpu-share: GPU stages run at once on each GPU (1) */
} hx_cli;

/*
 * Parse ARGV (argv[0] is the command's name) against CMD's row of the command table: its options (long, short,
 * --name=value, -xVALUE, "--" ends them), their kinds and ranges, and its number of positionals. `-h`/`--help`
 * anywhere prints the command's help and exits 0. Dies with status 2 on a bad command line, naming the option and
 * the closest one ("did you mean").
 */
void hx_cli_parse(hx_cli *c, const hx_cmd *cmd, const char *name, int argc, char **argv);
/* The value of option NAME (the last one given, else the row's default, else NULL). BUG() if CMD has no such
 * option: a command reads only the options of its own row. */
const char *hx_cli_str(const hx_cli *c, const char *name);
/* 1 if flag or option NAME was given. */
int hx_cli_given(const hx_cli *c, const char *name);
/* An HX_OPT_INT option's value (checked against its range when parsed), else its row's default, else DEF. */
int hx_cli_int(const hx_cli *c, const char *name, int def);
/* Every value of option NAME, in order (xmalloc'd, NULL-terminated; *n their count). */
const char **hx_cli_list(const hx_cli *c, const char *name, int *n);
void hx_cli_release(hx_cli *c);

void hx_cli_open_store(const hx_cli *c, hx_store *s);            /* dies with status 3 */
char *hx_cli_binary_digest(void);                                 /* sha256 of /proc/self/exe */
void hx_cli_load(const hx_cli *c, hx_recipe *r, hx_plan *p);      /* dies with status 2 */

/* A recipe planned against the store: what `hx plan`, `hx dag` and `hx why` show. */
typedef struct hx_cli_planned {
    hx_recipe r;
    hx_plan p;
    hx_store s;
    json_t *states; /* hx_cli_plan_states */
} hx_cli_planned;
/* hx_cli_load, hx_cli_open_store and hx_cli_plan_states in one: dies with status 2 (recipe) or 3 (store). */
void hx_cli_plan_open(const hx_cli *c, hx_cli_planned *v);
void hx_cli_plan_close(hx_cli_planned *v);

/* State of every instance against the store and the recipe's history: "cached", "new" or "stale",
 * with a one-line reason. STATES gets p->n objects {state, reason, previous (history record)}. */
json_t *hx_cli_plan_states(const hx_plan *p, const hx_store *s);
/* One line per external input of IN (path parameters: "external FIELD: PATH sha256 ..."), indented. */
void hx_cli_print_external(const hx_instance *in, int indent);
/* The hash components of instance I that differ from a previous execution's record, as lines. */
json_t *hx_cli_diff(const hx_plan *p, int i, const json_t *prev);

#endif
