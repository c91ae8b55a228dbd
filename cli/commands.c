/* commands.c - the command table: every hx command, its flags, arguments and options, one row each (commands.h). */
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "cli/commands.h"
#include "interp/exec.h"

/*
 * Adding an option: one row in the command's option list below (name, short name, kind, argument name, help,
 * default, choices, completion, range); the command reads it with hx_cli_str/_int/_given/_list (cli.h). Options
 * several commands share are the HX_OPT_*_ROW macros of commands.h. Adding a command: a cmd_<name>.c with
 * cmd_<name>(hx_cli *c), its declaration in commands.h and its row in `commands` (sorted by name). Help, docs/cli.md's
 * tables (`hx help --markdown`, checked by tests/e2e/cli_help.sh), the man page and completion follow.
 */

#define END {NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, 0, 0}

static const hx_opt bench_model_opts[] = {
    {"config", 0, HX_OPT_STR, "FILE", "the model's config.json (instead of --shape)", NULL, NULL, "file", 0, 0},
    {"shape", 0, HX_OPT_STR, NULL, "a built-in shape: tiny (d 128, 4 layers, ~1M params) or small (d 384, 8 layers, "
     "~20M)", "tiny", "tiny|small", NULL, 0, 0},
    {"batch", 0, HX_OPT_INT, "B", "sequences per step (eval: batch slots)", "8", NULL, NULL, 1, 0},
    {"seq", 0, HX_OPT_INT, "T", "tokens per sequence", "128", NULL, NULL, 2, 0},
    {"steps", 0, HX_OPT_INT, "N", "timed steps", "5", NULL, NULL, 1, 0},
    {"recompute", 0, HX_OPT_FLAG, NULL, "training: activation recomputation (hx run --recompute)", NULL, NULL, NULL, 0,
     0},
    {"new", 0, HX_OPT_INT, "N", "infer, eval: new tokens per sequence at most", "32", NULL, NULL, 1, 0},
    {"items", 0, HX_OPT_INT, "N", "eval: prompts of T/2..T tokens", "1024", NULL, NULL, 1, 0},
    {"stop", 0, HX_OPT_INT, "N", "eval: token ids 0..N-1 end a sequence (an answer's newline or period)", "0", NULL,
     NULL, 0, 0},
    {"frozen", 0, HX_OPT_FLAG, NULL, "infer, eval: freeze the weights first (on CUDA the matmuls read a bf16 copy)",
     NULL, NULL, NULL, 0, 0},
    {"grid", 0, HX_OPT_STR, "BxT,..", "infer: each batch x context point in turn on the same model (one set-up), "
     "e.g. 1x4096,64x1024", NULL, NULL, NULL, 0, 0},
    HX_OPT_DEVICE_ROW("cpu", "cpu or cuda"),
    HX_OPT_THREADS_ROW("CPU threads (default: $OMP_NUM_THREADS, else the cores)"),
    END,
};

static const hx_opt bench_kda_opts[] = {
    {"d", 0, HX_OPT_INT, "N", "model width", "1024", NULL, NULL, 1, 0},
    {"heads", 0, HX_OPT_INT, "N", "query heads", "16", NULL, NULL, 1, 0},
    {"kv-heads", 0, HX_OPT_INT, "N", "key/value heads", "8", NULL, NULL, 1, 0},
    {"head-dim", 0, HX_OPT_INT, "N", "head dimension K", "128", NULL, NULL, 1, 0},
    {"lengths", 0, HX_OPT_STR, "T,...", "sequence lengths (K for 1024)", "512,2048,8192", NULL, NULL, 0, 0},
    {"reps", 0, HX_OPT_INT, "N", "repetitions per length", "1", NULL, NULL, 1, 0},
    HX_OPT_THREADS_ROW("CPU threads (default: automatic)"),
    END,
};

static const hx_opt bench_memory_opts[] = {
    {"config", 0, HX_OPT_STR, "FILE", "the model's config.json (required)", NULL, NULL, "file", 0, 0},
    {"lengths", 0, HX_OPT_STR, "T,...", "context lengths (K for 1024)", "4096,32768,131072", NULL, NULL, 0, 0},
    {"layers", 0, HX_OPT_STR, "SPEC", "the hybrid's attention layers when the config is all attention (convert's "
     "`layers`)", "paper", NULL, NULL, 0, 0},
    END,
};

static const hx_cmd bench_subs[] = {
    {"eval", cmd_bench_eval, HX_CMD_COMPUTE, "", 0, 0, NULL,
     "generation items/s: continuous batching vs one batch at a time (bench_engine.c)", bench_model_opts, NULL, NULL},
    {"infer", cmd_bench_infer, HX_CMD_COMPUTE, "", 0, 0, NULL,
     "Qwen3 prefill and KV-cache decode tokens/s for a shape (bench_engine.c)", bench_model_opts, NULL, NULL},
    {"kda", cmd_bench_kda, HX_CMD_COMPUTE, "", 0, 0, NULL,
     "KDA layer vs Qwen3 attention layer: CPU tokens/s, forward and forward+backward", bench_kda_opts, NULL, NULL},
    {"memory", cmd_bench_memory, 0, "", 0, 0, NULL,
     "KV cache vs KDA state bytes per sequence for a config.json over context lengths", bench_memory_opts, NULL, NULL},
    {"train", cmd_bench_train, HX_CMD_COMPUTE, "", 0, 0, NULL,
     "Qwen3 training step tokens/s (forward, backward, AdamW) for a shape (bench_engine.c)", bench_model_opts, NULL,
     NULL},
    {NULL, NULL, 0, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

static const hx_opt json_opts[] = {HX_OPT_JSON_ROW, END};

static const hx_opt none_opts[] = {END};

static const hx_opt conform_opts[] = {
    HX_OPT_DEVICE_ROW("cpu", "cpu or cuda"),
    {"tokenizer", 0, HX_OPT_STR, "FILE", "a tokenizer fixture's tokenizer.json (default: the pinned Qwen3 one)", NULL,
     NULL, "file", 0, 0},
    HX_OPT_THREADS_ROW("CPU threads (default: $OMP_NUM_THREADS)"),
    END,
};

static const hx_opt dag_opts[] = {
    HX_OPT_SET_ROW,
    {"format", 0, HX_OPT_STR, NULL, "Graphviz dot text, or SVG drawn by Graphviz's dot ($HX_DOT)", "dot", "dot|svg",
     NULL, 0, 0},
    {"output", 'o', HX_OPT_STR, "FILE", "write to FILE (atomically) instead of stdout", NULL, NULL, "file", 0, 0},
    HX_OPT_STRICT_ROW,
    END,
};

static const hx_opt diff_opts[] = {
    HX_OPT_JSON_ROW,
    {"flips", 0, HX_OPT_INT, "N", "flipped items shown per eval", "10", NULL, NULL, 0, 0},
    END,
};

static const hx_opt exec_key_opts[] = {
    HX_OPT_THREADS_ROW("CPU threads (default: 1)"),
    HX_OPT_DEVICE_ROW("auto", "cpu, cuda (the first GPU Slurm gave the job), cuda:N, or auto (cuda when "
                      "$CUDA_VISIBLE_DEVICES is set)"),
    {"verify", 0, HX_OPT_FLAG, NULL, "check every cached input in full, as hx fsck does", NULL, NULL, NULL, 0, 0},
    END,
};

static const hx_opt export_opts[] = {
    {"output", 'o', HX_OPT_STR, "FILE.tar.zst", "the archive to write (required)", NULL, NULL, "file", 0, 0},
    {"with-inputs", 0, HX_OPT_FLAG, NULL, "keys: also their inputs' entries in full (not only their manifests)", NULL,
     NULL, NULL, 0, 0},
    {"kinds", 0, HX_OPT_STR, "K,..", "runs: only the entries of these stage kinds in full (e.g. eval: the evaluation "
     "without checkpoints), the rest as provenance manifests", NULL, NULL, NULL, 0, 0},
    HX_OPT_JSON_ROW,
    END,
};

static const hx_opt fsck_opts[] = {
    {"repair", 0, HX_OPT_FLAG, NULL, "move bad entries and run records to quarantine/ (nothing is deleted)", NULL, NULL,
     NULL, 0, 0},
    HX_OPT_JSON_ROW,
    END,
};

static const hx_opt gc_opts[] = {
    {"keep", 0, HX_OPT_INT, "N", "keep the newest N run records (default: all)", NULL, NULL, NULL, 0, 0},
    {"dry-run", 0, HX_OPT_FLAG, NULL, "say what would be removed; remove nothing", NULL, NULL, NULL, 0, 0},
    HX_OPT_JSON_ROW,
    END,
};

static const hx_opt generate_opts[] = {
    {"prompt", 'p', HX_OPT_LIST, "PROMPT", "a prompt; repeatable", NULL, NULL, NULL, 0, 0},
    {"file", 0, HX_OPT_LIST, "FILE", "prompts, one a line; repeatable (in order with -p)", NULL, NULL, "file", 0, 0},
    {"max-new", 0, HX_OPT_INT, "N", "new tokens per prompt at most", "32", NULL, NULL, 0, 0},
    {"stop", 0, HX_OPT_LIST, "STR", "stop a completion at STR; repeatable", NULL, NULL, NULL, 0, 0},
    {"chat", 0, HX_OPT_FLAG, NULL, "wrap each prompt as a user turn; print prompt and reply apart", NULL, NULL, NULL, 0,
     0},
    {"no-eos", 0, HX_OPT_FLAG, NULL, "do not stop at the end-of-sequence token", NULL, NULL, NULL, 0, 0},
    {"batch", 0, HX_OPT_INT, "N", "sequences decoded at once", "8", NULL, NULL, 1, 0},
    HX_OPT_TOKENIZER_ROW,
    HX_OPT_DEVICE_ROW("cpu", "cpu or cuda"),
    HX_OPT_THREADS_ROW("CPU threads (default: automatic)"),
    {"json", 0, HX_OPT_FLAG, NULL, "one JSON line per prompt: {prompt, completion}", NULL, NULL, NULL, 0, 0},
    END,
};

static const hx_opt grade_opts[] = {
    /* not `choices`: a --json-lines line may set its own format, checked where both are (cmd_grade.c) */
    {"format", 0, HX_OPT_STR, "mcq|cloze|open|prose", "the item's format", "mcq", NULL, "mcq|cloze|open|prose", 0, 0},
    {"choices", 0, HX_OPT_INT, "N", "mcq, cloze: the number of choices (1..26)", NULL, NULL, NULL, 0, 0},
    {"option", 0, HX_OPT_LIST, "TEXT", "mcq, cloze: a choice's text (the `choice` rule); repeatable, at most 26", NULL,
     NULL, NULL, 0, 0},
    {"target", 0, HX_OPT_STR, "T", "open, prose: the accepted answer", NULL, NULL, NULL, 0, 0},
    {"alias", 0, HX_OPT_LIST, "A", "open, prose: another accepted answer; repeatable, at most 64", NULL, NULL, NULL, 0,
     0},
    {"match", 0, HX_OPT_STR, NULL, "open, prose: how an answer matches the target", "contains", "contains|exact", NULL,
     0, 0},
    {"json-lines", 0, HX_OPT_STR, "FILE", "grade one reply per line of FILE (- for stdin) instead of REPLY", NULL, NULL,
     "file", 0, 0},
    END,
};

static const hx_opt help_opts[] = {
    {"kind", 0, HX_OPT_FLAG, NULL, "NAME is a stage kind (for a name that is also a command: bench)", NULL, NULL, NULL,
     0, 0},
    {"markdown", 0, HX_OPT_FLAG, NULL, "the option tables of docs/cli.md (of every command, or of COMMAND)", NULL,
     NULL, NULL, 0, 0},
    {"man", 0, HX_OPT_FLAG, NULL, "the man page hx(1), as roff", NULL, NULL, NULL, 0, 0},
    END,
};

static const hx_opt import_opts[] = {
    {"dry-run", 0, HX_OPT_FLAG, NULL, "verify and report what would be added; add nothing", NULL, NULL, NULL, 0, 0},
    HX_OPT_JSON_ROW,
    END,
};

static const hx_opt plan_opts[] = {
    HX_OPT_SET_ROW,
    {"jobs", 'j', HX_OPT_INT, "N", "the wall-time estimate for N instances at once (hx run --jobs N)", "1", NULL, NULL,
     1, 0},
    HX_OPT_STRICT_ROW,
    HX_OPT_JSON_ROW,
    END,
};

static const hx_opt report_opts[] = {
    {"format", 0, HX_OPT_STR, NULL, "one format to stdout (or -o FILE) instead of the report folder: Markdown, JSON, "
     "LaTeX, an HTML page with the figures, long-format CSV, the figures as SVG or as a LaTeX/TikZ document", NULL,
     "md|json|tex|html|csv|svg|pgf", NULL, 0, 0},
    {"output", 'o', HX_OPT_STR, "DIR|FILE", "the report folder (default reports/<run>/ under the store); with --format, "
     "or a file name ending in a format's extension, that one file (written atomically)", NULL, NULL, "file", 0, 0},
    END,
};

static const hx_opt runs_opts[] = {
    {"metrics", 0, HX_OPT_FLAG, NULL, "a table across runs (RUN..., else every run): the params that differ, LL and "
     "Gen accuracy, deltas and did with intervals, one row per arm", NULL, NULL, NULL, 0, 0},
    {"recipe", 0, HX_OPT_STR, "NAME", "only the runs of recipe NAME", NULL, NULL, NULL, 0, 0},
    {"where", 0, HX_OPT_LIST, "KEY=VALUE", "--metrics: only rows whose param or axis KEY has VALUE (repeatable; numbers "
     "compare by value)", NULL, NULL, NULL, 0, 0},
    HX_OPT_JSON_ROW,
    END,
};

static const hx_opt run_opts[] = {
    HX_OPT_SET_ROW,
    HX_OPT_DEVICE_ROW("auto", "auto (GPUs when there are), cpu, cuda (every GPU) or cuda:N"),
    {"jobs", 'j', HX_OPT_INT, "N", "independent stage instances run at once", "1", NULL, NULL, 1, 0},
    {"gpu-share", 0, HX_OPT_INT, "N", "GPU stage instances run at once on each GPU (small models leave a GPU idle); "
     "without --jobs, jobs become N x GPUs", "1", NULL, NULL, 1, HX_MAX_JOBS},
    HX_OPT_THREADS_ROW("CPU threads of each stage (default: cores / jobs)"),
    {"recompute", 0, HX_OPT_FLAG, NULL, "training stages keep only layer inputs (bit-identical; not in keys)", NULL,
     NULL, NULL, 0, 0},
    {"verify", 0, HX_OPT_FLAG, NULL, "check every cached entry used in full, as hx fsck does", NULL, NULL, NULL, 0, 0},
    HX_OPT_STRICT_ROW,
    HX_OPT_JSON_ROW,
    {"executor", 0, HX_OPT_STR, NULL, "run here, or submit each instance as a Slurm job (docs/cluster.md)", "local",
     "local|slurm", NULL, 0, 0},
    {"slurm-partition", 0, HX_OPT_STR, "P", "--executor slurm: the jobs' partition", NULL, NULL, NULL, 0, 0},
    {"slurm-account", 0, HX_OPT_STR, "A", "--executor slurm: the jobs' account", NULL, NULL, NULL, 0, 0},
    {"slurm-opt", 0, HX_OPT_LIST, "K=V", "--executor slurm: any sbatch option, to every job; repeatable", NULL, NULL,
     NULL, 0, 0},
    {"detach", 0, HX_OPT_FLAG, NULL, "--executor slurm: print the run id and return once the jobs are submitted", NULL,
     NULL, NULL, 0, 0},
    END,
};

static const hx_opt score_opts[] = {
    {"context", 'c', HX_OPT_LIST, "CONTEXT", "a context; repeatable, one per -x", NULL, NULL, NULL, 0, 0},
    {"continuation", 'x', HX_OPT_LIST, "CONTINUATION", "its continuation; repeatable", NULL, NULL, NULL, 0, 0},
    {"file", 0, HX_OPT_LIST, "FILE.jsonl", "pairs, one {\"context\", \"continuation\"} a line; repeatable", NULL, NULL,
     "file", 0, 0},
    {"chat", 0, HX_OPT_FLAG, NULL, "wrap each context as a user turn", NULL, NULL, NULL, 0, 0},
    {"batch", 0, HX_OPT_INT, "N", "sequences scored at once", "8", NULL, NULL, 1, 0},
    HX_OPT_TOKENIZER_ROW,
    HX_OPT_DEVICE_ROW("cpu", "cpu or cuda"),
    HX_OPT_THREADS_ROW("CPU threads (default: automatic)"),
    END,
};

static const hx_opt tokenize_opts[] = {
    {"tokenizer", 0, HX_OPT_STR, "SPEC", "a tokenizer.json, a directory holding one, or qwen3", "qwen3", NULL, "file",
     0, 0},
    {"ids", 0, HX_OPT_FLAG, NULL, "print the ids on one line (the default)", NULL, NULL, NULL, 0, 0},
    {"tokens", 0, HX_OPT_FLAG, NULL, "print one token a line: id, tab, the token as written in tokenizer.json", NULL,
     NULL, NULL, 0, 0},
    {"decode", 0, HX_OPT_FLAG, NULL, "read ids (separated by spaces or commas) and print the text they decode to",
     NULL, NULL, NULL, 0, 0},
    {"files", 0, HX_OPT_FLAG, NULL, "encode each FILE argument, one line of ids per file", NULL, NULL, NULL, 0, 0},
    {"bench", 0, HX_OPT_FLAG, NULL, "encoding speed in MB/s on the FILEs (default: the Brown corpus), 1 and N threads",
     NULL, NULL, NULL, 0, 0},
    HX_OPT_THREADS_ROW("--bench: N threads (OpenMP over documents; default: automatic)"),
    END,
};

static const hx_opt why_opts[] = {HX_OPT_SET_ROW, HX_OPT_STRICT_ROW, END};

#define NO_SUBS NULL
/* Sorted by name. */
static const hx_cmd commands[] = {
    {"bench", NULL, HX_CMD_COMPUTE, "SUBCOMMAND", 1, -1, "eval|infer|kda|memory|train",
     "engine benchmarks: train and inference tokens/s, KDA vs attention, decode memory", none_opts,
     "Benchmarks print tables; they never assert timings. `hx help bench SUB` shows a subcommand's options.",
     bench_subs},
    {"cancel", cmd_cancel, HX_CMD_STORE, "RUN|latest", 1, 1, "run",
     "cancel the Slurm jobs of a run (hx run --executor slurm) and record it as cancelled", json_opts,
     "Waits (up to a minute) until the jobs have stopped; the next hx run resumes them.", NO_SUBS},
    {"completion", cmd_completion, 0, "bash|zsh", 1, 1, "bash|zsh",
     "print a shell completion script, made from this command table", none_opts,
     "Load it with `source <(hx completion bash)`, or let make install put it where bash-completion finds it.\n"
     "The zsh script loads the bash one through bashcompinit.",
     NO_SUBS},
    {"conform", cmd_conform, HX_CMD_COMPUTE, "DIR", 1, 1, "dir",
     "run the engine on a reference fixture directory and compare", conform_opts,
     "DIR holds README.json with a \"kind\" (hybrid, kda_core, kda_layer, qwen3, tokenizer) and the reference's "
     "tensors\n(tests/fixtures/README.md).",
     NO_SUBS},
    {"dag", cmd_dag, HX_CMD_STORE, "RECIPE", 1, 1, "recipe",
     "the plan as Graphviz dot (or SVG, drawn by Graphviz's dot), coloured by cache state", dag_opts, NULL, NO_SUBS},
    {"diff", cmd_diff, HX_CMD_COMPUTE | HX_CMD_STORE, "RUN_A RUN_B | RUN:STAGE[axis=value,...] RUN:STAGE[...]", 2, 2, "run",
     "two runs (parameters, stage keys, matched evals) or any two evals: paired deltas, did, retention, flipped items",
     diff_opts, NULL, NO_SUBS},
    {"exec-key", cmd_exec_key, HX_CMD_COMPUTE | HX_CMD_STORE, "KEY RUN", 2, 2, NULL,
     "execute one planned instance of run RUN's record (what each Slurm job runs; docs/cluster.md)", exec_key_opts,
     NULL, NO_SUBS},
    {"export", cmd_export, HX_CMD_STORE, "RUN|KEY...", 1, -1, "run",
     "store entries (a run's, or keys with their inputs' manifests) and run records as one archive", export_opts, NULL,
     NO_SUBS},
    {"fsck", cmd_fsck, HX_CMD_STORE, "[KEY...]", 0, -1, NULL,
     "check entries (digests, exact file lists, keys) and run records; --repair moves bad ones to quarantine/",
     fsck_opts, "Exit status 3 when a problem was found, else 0.", NO_SUBS},
    {"gc", cmd_gc, HX_CMD_STORE, "", 0, 0, NULL,
     "remove run records beyond the newest N and store entries no kept run references", gc_opts, NULL, NO_SUBS},
    {"generate", cmd_generate, HX_CMD_COMPUTE | HX_CMD_STORE, "MODEL", 1, 1, "dir",
     "greedy completions of prompts with a checkpoint (a directory or RUN:STAGE[axis=value])", generate_opts,
     "MODEL: a checkpoint directory, RUN:STAGE[axis=value,...] (e.g. latest:finetune[masking=completion_only])\n"
     "or a store key prefix. The tokenizer defaults to the model's tokenizer.json. At least one -p or --file.",
     NO_SUBS},
    {"grade", cmd_grade, 0, "REPLY", 0, 1, NULL,
     "grade a reply as the eval stage does: the extracted answer and the rule that fired", grade_opts,
     "mcq/cloze print {\"pred\": \"A\"|null, \"rule\": explicit|leading|choice|anywhere|ambiguous|none};\n"
     "open/prose print {\"correct\": bool, \"em\": bool, \"pred\": SHORT_ANSWER} (docs/eval.md \"Answer extraction\").\n"
     "--json-lines grades one reply per line: a JSON string, or {\"reply\": ..., and any of \"format\", \"choices\"\n"
     "(N or a list of texts), \"target\", \"aliases\"}. A reply that starts with '-' goes after --.",
     NO_SUBS},
    {"help", cmd_help, 0, "[COMMAND [SUB]|KIND]", 0, 2, "command|kind",
     "show usage of hx, of one command, or of a stage kind (its parameters, defaults and input roles)", help_opts,
     NULL, NO_SUBS},
    {"import", cmd_import, HX_CMD_STORE, "FILE.tar.zst", 1, 1, "file",
     "verify an export's digests and add its entries and run records to the store", import_opts, NULL, NO_SUBS},
    {"plan", cmd_plan, HX_CMD_STORE, "RECIPE", 1, 1, "recipe",
     "list every stage instance: axes, key, cached|new|stale and why", plan_opts, NULL, NO_SUBS},
    {"report", cmd_report, HX_CMD_COMPUTE | HX_CMD_STORE, "[RUN|latest|PREFIX]", 0, 1, "run",
     "the report folder (tables, figures, CSV, findings; reports/<run>/ in the store), or one format to stdout",
     report_opts, NULL, NO_SUBS},
    {"run", cmd_run, HX_CMD_COMPUTE | HX_CMD_STORE, "RECIPE", 1, 1, "recipe",
     "execute a recipe: every stage instance not already in the store, at most once", run_opts, NULL, NO_SUBS},
    {"runs", cmd_runs, HX_CMD_COMPUTE | HX_CMD_STORE, "[RUN...]", 0, -1, "run",
     "list run records, newest first (a running run's progress); --metrics: one table of params and metrics across runs",
     runs_opts, NULL, NO_SUBS},
    {"score", cmd_score, HX_CMD_COMPUTE | HX_CMD_STORE, "MODEL", 1, 1, "dir",
     "log-likelihood of continuations given contexts", score_opts,
     "MODEL: a checkpoint directory, RUN:STAGE[axis=value,...] or a store key prefix. Prints one JSON line per\n"
     "item: logp (sum), n_tokens, greedy (every continuation token is the argmax). Pairs are encoded as lm-eval's\n"
     "_encode_pair: the context's trailing whitespace moves to the continuation (docs/eval.md).",
     NO_SUBS},
    {"show", cmd_show, HX_CMD_STORE, "RUN|latest|KEY|RUN:STAGE[axis=value]", 1, 1, "run",
     "a run's summary (stages, states, times, metrics; --json: the record) or a store entry's manifest", json_opts,
     NULL, NO_SUBS},
    {"tokenize", cmd_tokenize, 0, "[TEXT|-|FILE...]", 0, -1, "file",
     "encode text to token ids (or decode ids) with a tokenizer.json", tokenize_opts,
     "Encodes TEXT (or stdin) without adding special tokens (special tokens in the text are recognised).",
     NO_SUBS},
    {"version", cmd_version, 0, "", 0, 0, NULL, "print the hx version and build", none_opts, NULL, NO_SUBS},
    {"why", cmd_why, HX_CMD_STORE, "RECIPE STAGE", 2, 2, "recipe",
     "name the hash components that changed since the stage last executed", why_opts, NULL, NO_SUBS},
    {NULL, NULL, 0, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

static const hx_opt store_opt = HX_OPT_STORE_ROW;

const hx_cmd *hx_cmd_table(void) { return commands; }

const hx_cmd *hx_cmd_find(const char *name)
{
    for (const hx_cmd *c = commands; c->name; c++)
        if (!strcmp(c->name, name)) return c;
    return NULL;
}

const hx_cmd *hx_cmd_find_sub(const hx_cmd *cmd, const char *name)
{
    for (const hx_cmd *s = cmd->subs; s && s->name; s++)
        if (!strcmp(s->name, name)) return s;
    return NULL;
}

const hx_opt *hx_cmd_opt(const hx_cmd *cmd, const char *name)
{
    for (const hx_opt *o = cmd->opts; o && o->name; o++)
        if (!strcmp(o->name, name)) return o;
    if ((cmd->flags & HX_CMD_STORE) && !strcmp(name, store_opt.name)) return &store_opt;
    return NULL;
}

void hx_cmd_each_opt(const hx_cmd *cmd, void (*fn)(const hx_opt *o, void *ud), void *ud)
{
    for (const hx_opt *o = cmd->opts; o && o->name; o++) fn(o, ud);
    if (cmd->flags & HX_CMD_STORE) fn(&store_opt, ud);
}
