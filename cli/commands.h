/* commands.h - every `hx <subcommand>` as data: the command table (commands.c) with each command's flags, arguments
 * and options, from which parsing (cli.c), help, docs/cli.md's option tables, the man page and shell completion
 * (help.c) are all produced. One cmd_<name>(c) per file receives its arguments already parsed. */
#ifndef HX_COMMANDS_H
#define HX_COMMANDS_H

#include <stdio.h>

struct hx_cli;

/* Receives the parsed command line (cli.h); returns the process exit status (base.h HX_EXIT_*). */
typedef int (*hx_cmd_fn)(struct hx_cli *c);

typedef enum hx_opt_kind {
    HX_OPT_FLAG, /* --name: no value */
    HX_OPT_STR,  /* --name VALUE (also --name=VALUE, -xVALUE); the last one given wins */
    HX_OPT_INT,  /* an integer within [min, max] (max 0: no upper bound); the last one given wins */
    HX_OPT_LIST, /* --name VALUE, repeatable: every value, in order */
} hx_opt_kind;

/* One option of a command: a row of its table. Adding an option to a command is adding one row. */
typedef struct hx_opt {
    const char *name;     /* long name, without "--" */
    char short_name;      /* -x, or 0 */
    hx_opt_kind kind;
    const char *arg;      /* the value's name in usage ("N", "FILE"); NULL for a flag (or: the choices) */
    const char *help;     /* one line: what it does */
    const char *def;      /* the default as text (shown in help; hx_cli_str returns it when not given), or NULL */
    const char *choices;  /* "a|b|c": the only values accepted (and completed), or NULL */
    const char *complete; /* what completes the value: "file", "dir", "recipe", "run", "kind", or NULL */
    int min, max;         /* HX_OPT_INT: the accepted range (max 0: no upper bound) */
} hx_opt;

enum {
    HX_CMD_COMPUTE = 1, /* computes with OpenMP: re-executes itself with GOMP_SPINCOUNT (main.c) */
    HX_CMD_STORE = 2,   /* reads or writes a store: takes the shared --store DIR */
};

typedef struct hx_cmd {
    const char *name;
    hx_cmd_fn fn;               /* NULL for a command with subcommands (hx bench SUB) */
    int flags;                  /* HX_CMD_* */
    const char *args;           /* the positional arguments, as usage shows them ("RECIPE", "[KEY...]") */
    int min_args, max_args;     /* how many positionals (max_args -1: any number) */
    const char *complete_args;  /* what completes a positional: "recipe", "run", "file", "dir", "command|kind", or
                                 * "a|b|c" words */
    const char *summary;        /* one line: what it does */
    const hx_opt *opts;         /* terminated by {NULL}; NULL for none */
    const char *help;           /* more text for `hx help CMD` (paragraphs, lines of at most 100), or NULL */
    const struct hx_cmd *subs;  /* subcommands, sorted, terminated by {NULL}, or NULL */
} hx_cmd;

/* The options that several commands share, each defined once (the command table uses these rows). */
#define HX_OPT_SET_ROW                                                                                                \
    {"set", 'S', HX_OPT_LIST, "KEY=VALUE", "override a recipe field (a YAML value) or delete it (-S ~KEY); repeatable", \
     NULL, NULL, NULL, 0, 0}
#define HX_OPT_JSON_ROW                                                                                                 \
    {"json", 0, HX_OPT_FLAG, NULL, "machine output: a JSON result on stdout, JSON-lines events on stderr", NULL, NULL, \
     NULL, 0, 0}
#define HX_OPT_STRICT_ROW \
    {"strict", 0, HX_OPT_FLAG, NULL, "mix this binary's SHA-256 into every key", NULL, NULL, NULL, 0, 0}
#define HX_OPT_THREADS_ROW(help) {"threads", 0, HX_OPT_INT, "N", help, NULL, NULL, NULL, 1, HX_MAX_THREADS}
#define HX_OPT_DEVICE_ROW(def, choices_help)                                                                       \
    {"device", 0, HX_OPT_STR, "DEVICE", "where to compute: " choices_help, def, NULL, "cpu cuda auto cuda:0", 0, 0}
#define HX_OPT_TOKENIZER_ROW \
    {"tokenizer", 0, HX_OPT_STR, "SPEC", "a tokenizer.json, a directory holding one, or qwen3", NULL, NULL, "file", 0, 0}
/* The shared --store of every HX_CMD_STORE command (the parser adds it; cli.c). */
#define HX_OPT_STORE_ROW                                                                                       \
    {"store", 0, HX_OPT_STR, "DIR", "the store (default: $HX_STORE, else .hx in the working directory)", NULL, \
     NULL, "dir", 0, 0}

int cmd_bench_eval(struct hx_cli *c);
int cmd_bench_infer(struct hx_cli *c);
int cmd_bench_kda(struct hx_cli *c);
int cmd_bench_memory(struct hx_cli *c);
int cmd_bench_train(struct hx_cli *c);
int cmd_cancel(struct hx_cli *c);
int cmd_completion(struct hx_cli *c);
int cmd_conform(struct hx_cli *c);
int cmd_dag(struct hx_cli *c);
int cmd_diff(struct hx_cli *c);
int cmd_exec_key(struct hx_cli *c);
int cmd_export(struct hx_cli *c);
int cmd_fsck(struct hx_cli *c);
int cmd_gc(struct hx_cli *c);
int cmd_generate(struct hx_cli *c);
int cmd_grade(struct hx_cli *c);
int cmd_help(struct hx_cli *c);
int cmd_import(struct hx_cli *c);
int cmd_plan(struct hx_cli *c);
int cmd_report(struct hx_cli *c);
int cmd_run(struct hx_cli *c);
int cmd_runs(struct hx_cli *c);
int cmd_score(struct hx_cli *c);
int cmd_show(struct hx_cli *c);
int cmd_tokenize(struct hx_cli *c);
int cmd_version(struct hx_cli *c);
int cmd_why(struct hx_cli *c);

/* The table itself, sorted by name (commands.c). */
const hx_cmd *hx_cmd_table(void);
const hx_cmd *hx_cmd_find(const char *name);
/* SUB of a command with subcommands, or NULL. */
const hx_cmd *hx_cmd_find_sub(const hx_cmd *cmd, const char *name);
/* The row of option NAME (long name) in CMD, the shared --store included; NULL if CMD has none. */
const hx_opt *hx_cmd_opt(const hx_cmd *cmd, const char *name);
/* Calls FN on every option of CMD, the shared --store included (for help, docs and completion). */
void hx_cmd_each_opt(const hx_cmd *cmd, void (*fn)(const hx_opt *o, void *ud), void *ud);

/* `hx help CMD` / `hx CMD --help` on F (help.c); FULL_NAME is "bench kda" for a subcommand. */
void hx_help_command(FILE *f, const hx_cmd *cmd, const char *full_name);
/* "usage: hx FULL_NAME ARGS [options]" (one line, no newline), xmalloc'd. */
char *hx_help_usage(const hx_cmd *cmd, const char *full_name);

#endif
