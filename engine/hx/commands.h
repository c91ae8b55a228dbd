/* commands.h - every `hx <subcommand>`: one cmd_<name>(argc, argv) per file, dispatched by main.c's table. */
#ifndef HX_COMMANDS_H
#define HX_COMMANDS_H

/* argv[0] is the subcommand name; returns the process exit status (base.h HX_EXIT_*). */
typedef int (*hx_cmd_fn)(int argc, char **argv);

typedef struct hx_cmd {
    const char *name;
    hx_cmd_fn fn;
    const char *usage;   /* one line: arguments */
    const char *summary; /* one line: what it does */
} hx_cmd;

int cmd_bench(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
int cmd_conform(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_grade(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_dag(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_exec_key(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_fsck(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_why(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);

/* The table itself, sorted by name (main.c). */
const hx_cmd *hx_cmd_table(void);
const hx_cmd *hx_cmd_find(const char *name);
void hx_print_usage_for(const hx_cmd *c);

#endif
