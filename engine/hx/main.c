/* main.c - `hx`: dispatches the subcommand through one sorted command table (git.c style). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "engine/hx/commands.h"
#include "engine/hx/recipe.h"

/* Sorted by name; usage text and `hx help` come from here. */
static const hx_cmd commands[] = {
    {"bench", cmd_bench, "infer|kda|memory|train [options]", "engine benchmarks: train and inference tokens/s, KDA vs attention, decode memory"},
    {"cancel", cmd_cancel, "RUN|latest [--store DIR] [--json]",
     "cancel the Slurm jobs of a run (hx run --executor slurm) and record it as cancelled"},
    {"conform", cmd_conform, "[--device cpu|cuda] [--tokenizer FILE] DIR",
     "run the engine on a reference fixture directory and compare"},
    {"dag", cmd_dag, "RECIPE [-S k=v]... [--format dot|svg] [-o FILE] [--store DIR] [--strict]",
     "the plan as Graphviz dot (or SVG, drawn by Graphviz's dot), coloured by cache state"},
    {"diff", cmd_diff, "RUN_A RUN_B | RUN:STAGE[axis=value,...] RUN:STAGE[...] [--json] [--flips N] [--store DIR]",
     "two runs (parameters, stage keys, matched evals) or any two evals: paired deltas, did, retention, flipped items"},
    {"exec-key", cmd_exec_key, "KEY RUN [--store DIR] [--threads N] [--device cpu|cuda] [--verify]",
     "execute one planned instance of run RUN's record (what each Slurm job runs; docs/cluster.md)"},
    {"export", cmd_export, "RUN|KEY... -o FILE.tar.zst [--with-inputs] [--store DIR] [--json]",
     "store entries (a run's, or keys with their inputs' manifests) and run records as one archive"},
    {"fsck", cmd_fsck, "[KEY...] [--repair] [--store DIR] [--json]",
     "check entries (digests, exact file lists, keys) and run records; --repair moves bad ones to quarantine/"},
    {"gc", cmd_gc, "[--keep N] [--dry-run] [--store DIR] [--json]",
     "remove run records beyond the newest N and store entries no kept run references"},
    {"generate", cmd_generate, "MODEL [-p PROMPT]... [--file F] [--max-new N] [--stop S]... [--chat] [--store DIR]",
     "greedy completions of prompts with a checkpoint (a directory or RUN:STAGE[axis=value])"},
    {"grade", cmd_grade, "--format mcq|cloze|open|prose [--choices N] [--target T] [--alias A]... REPLY|--json-lines F",
     "grade a reply as the eval stage does: the extracted answer and the rule that fired"},
    {"help", cmd_help, "[COMMAND]", "show usage of hx or of one command"},
    {"import", cmd_import, "FILE.tar.zst [--dry-run] [--store DIR] [--json]",
     "verify an export's digests and add its entries and run records to the store"},
    {"plan", cmd_plan, "RECIPE [-S k=v]... [--jobs N] [--store DIR] [--strict] [--json]",
     "list every stage instance: axes, key, cached|new|stale and why, and its time estimated from earlier executions"},
    {"report", cmd_report, "[RUN|latest|PREFIX] [--format md|json|tex|html] [-o FILE] [--store DIR]",
     "the recipe's report tables: deltas vs the teacher by LL and generation, did, retention, letters, reversals"},
    {"run", cmd_run,
     "RECIPE [-S k=v]... [--device auto|cpu|cuda[:N]] [--jobs N] [--threads N] [--recompute] [--store DIR] [--verify] [--strict] [--json]\n"
     "           [--executor local|slurm [--slurm-partition P] [--slurm-account A] [--slurm-opt K=V]... [--detach]]",
     "execute a recipe: every stage instance not already in the store, at most once"},
    {"runs", cmd_runs, "[--recipe NAME] [--metrics [RUN...] [--where KEY=VALUE]...] [--store DIR] [--json]",
     "list run records, newest first; --metrics: one table of their metrics and the parameters that differ"},
    {"score", cmd_score, "MODEL (-c CONTEXT -x CONTINUATION)... [--file F.jsonl] [--chat] [--store DIR]",
     "log-likelihood of continuations given contexts"},
    {"show", cmd_show, "RUN|latest|KEY|RUN:STAGE[axis=value] [--json] [--store DIR]",
     "a run's summary (stages, states, times, metrics; --json: the record) or a store entry's manifest"},
    {"tokenize", cmd_tokenize, "[--tokenizer FILE|DIR] [--ids|--tokens] [--decode] [TEXT|-]",
     "encode text to token ids (or decode ids) with a tokenizer.json"},
    {"version", cmd_version, "", "print the hx version and build"},
    {"why", cmd_why, "RECIPE STAGE [-S k=v]... [--store DIR] [--strict]",
     "name the hash components that changed since the stage last executed"},
    {NULL, NULL, NULL, NULL},
};

const hx_cmd *hx_cmd_table(void) { return commands; }

/* "hx: 'NAME' is not an hx command (did you mean 'X'?). See 'hx help'." on stderr; returns the usage status. */
static int unknown_command(const char *name)
{
    const char *names[64];
    size_t n = 0;
    for (const hx_cmd *c = commands; c->name && n < 64; c++) names[n++] = c->name;
    const char *s = hx_suggest(name, names, n);
    fprintf(stderr, "hx: '%s' is not an hx command%s%s%s. See 'hx help'.\n", name, s ? " (did you mean '" : "",
            s ? s : "", s ? "'?)" : "");
    return HX_EXIT_USAGE;
}

const hx_cmd *hx_cmd_find(const char *name)
{
    for (const hx_cmd *c = commands; c->name; c++)
        if (!strcmp(c->name, name)) return c;
    return NULL;
}

void hx_print_usage_for(const hx_cmd *c)
{
    printf("usage: hx %s %s\n  %s\n", c->name, c->usage, c->summary);
}

int cmd_help(int argc, char **argv)
{
    if (argc > 1) {
        const hx_cmd *c = hx_cmd_find(argv[1]);
        if (!c) return unknown_command(argv[1]);
        hx_print_usage_for(c);
        return 0;
    }
    printf("usage: hx <command> [<args>]\n\ncommands:\n");
    for (const hx_cmd *c = commands; c->name; c++) printf("  %-10s %s\n", c->name, c->summary);
    printf("\n'hx help COMMAND' or 'hx COMMAND --help' for one command.\n");
    return 0;
}

int cmd_version(int argc, char **argv)
{
    (void)argc; (void)argv;
#ifdef HX_CUDA
    printf("hx %s (cpu, cuda)\n", HX_VERSION);
#else
    printf("hx %s (cpu)\n", HX_VERSION);
#endif
    return 0;
}

#ifdef HX_TEST_BUILD
/* build/hx-test: the test-only stage kinds of tests/kinds/ (t_source, t_concat, t_slow, t_fail). */
void hx_test_kinds_register(void);
#endif

/*
 * OpenMP waiting. libgomp reads its environment when it loads, before main, and by default a thread that waits
 * spins for a long time before it sleeps: on a machine whose cores are busy with other work that makes hx 5-15x
 * slower (tiny prefill 16 -> 487 ms, a training step 133 -> 2289 ms with two busy processes on 2 cores). A spin
 * count of 10000 costs nothing measurable on an idle machine (16.2 ms, 134 ms) and keeps most of the loss away on
 * a busy one (63 ms, 799 ms; OMP_WAIT_POLICY=passive: 34 ms, 275 ms, but +5-45% when idle). So the commands that
 * compute re-execute themselves once with GOMP_SPINCOUNT=10000 unless the user set either variable.
 */
static void omp_wait_default(const char *cmd, char **argv)
{
    static const char *const compute[] = {"bench", "conform", "exec-key", "generate", "run", "score", NULL};
    int heavy = 0;
    for (int i = 0; compute[i]; i++) heavy |= !strcmp(cmd, compute[i]);
    if (!heavy || getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    setenv("GOMP_SPINCOUNT", "10000", 1);
    execv("/proc/self/exe", argv); /* returns only on failure: then go on as we are */
}

int main(int argc, char **argv)
{
#ifdef HX_TEST_BUILD
    hx_test_kinds_register();
#endif
    if (argc < 2) {
        cmd_help(1, argv);
        return HX_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) name = "help";
    if (!strcmp(name, "--version")) name = "version";
    omp_wait_default(name, argv);
    const hx_cmd *c = hx_cmd_find(name);
    if (!c) return unknown_command(name);
    if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
        hx_print_usage_for(c);
        return 0;
    }
    return c->fn(argc - 1, argv + 1);
}
