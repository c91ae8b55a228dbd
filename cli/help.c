/* help.c - everything made from the command table for people: `hx help [CMD|KIND]`, `CMD --help`, docs/cli.md's
 * option tables (`hx help --markdown`), the man page (`hx help --man`) and shell completion (`hx completion`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "stages/stage.h"

#define HELP_COL 30 /* where an option's help starts in `hx help CMD` */

char *hx_help_usage(const hx_cmd *cmd, const char *full_name)
{
    int has_opts = (cmd->opts && cmd->opts->name) || (cmd->flags & HX_CMD_STORE);
    return xstrfmt("usage: hx %s%s%s%s", full_name, cmd->args && *cmd->args ? " " : "", cmd->args ? cmd->args : "",
                   cmd->subs ? " [options]" : has_opts ? " [options]" : "");
}

/* "-S, --set KEY=VALUE" / "--format dot|svg" (xmalloc'd); SEP between the names. */
static char *opt_spec(const hx_opt *o, const char *dash, const char *sep)
{
    const char *arg = o->arg ? o->arg : o->choices;
    char shortn[8] = "";
    if (o->short_name) snprintf(shortn, sizeof shortn, "%s%c", dash, o->short_name);
    return xstrfmt("%s%s%s%s%s%s%s", shortn, o->short_name ? sep : "", dash, dash, o->name, arg ? " " : "",
                   arg ? arg : "");
}

/* The help line's tail: "(repeatable)", "(default: X)". */
static char *opt_help(const hx_opt *o)
{
    return xstrfmt("%s%s%s%s", o->help, o->def ? " (default: " : "", o->def ? o->def : "", o->def ? ")" : "");
}

static void print_opt(const hx_opt *o, void *ud)
{
    FILE *f = ud;
    char *spec = opt_spec(o, "-", ", "), *help = opt_help(o);
    int pad = o->short_name ? 2 : 6;
    int len = pad + (int)strlen(spec);
    if (len + 2 > HELP_COL) fprintf(f, "%*s%s\n%*s%s\n", pad, "", spec, HELP_COL, "", help);
    else fprintf(f, "%*s%s%*s%s\n", pad, "", spec, HELP_COL - len, "", help);
    free(spec);
    free(help);
}

void hx_help_command(FILE *f, const hx_cmd *cmd, const char *full_name)
{
    char *usage = hx_help_usage(cmd, full_name);
    fprintf(f, "%s\n  %s\n", usage, cmd->summary);
    free(usage);
    if (cmd->subs) {
        fprintf(f, "\nsubcommands:\n");
        for (const hx_cmd *s = cmd->subs; s->name; s++) fprintf(f, "  %-10s %s\n", s->name, s->summary);
    }
    if ((cmd->opts && cmd->opts->name) || (cmd->flags & HX_CMD_STORE)) {
        fprintf(f, "\noptions:\n");
        hx_cmd_each_opt(cmd, print_opt, f);
    }
    if (cmd->help) fprintf(f, "\n%s\n", cmd->help);
}

/* ---- hx help KIND: a stage kind from the registry ---- */

static const char *type_name(hx_type t)
{
    static const char *const names[] = {"int", "number", "bool", "string", "list", "string list", "map", "any",
                                        "path", "path list"};
    return (size_t)t < sizeof names / sizeof *names ? names[t] : "?";
}

static void help_kind(const hx_stage_kind *k)
{
    printf("stage kind %s (version %d)%s\n  %s\n", k->name, k->version, k->needs_gpu ? ", prefers a GPU" : "",
           k->doc ? k->doc : "");
    int w = 5;
    for (const hx_field *f = k->fields; f && f->name; f++) w = (int)strlen(f->name) > w ? (int)strlen(f->name) : w;
    printf("\nparameters (with:):\n");
    if (!k->fields || !k->fields->name) printf("  (none)\n");
    for (const hx_field *f = k->fields; f && f->name; f++) {
        char *type = f->allowed ? xstrfmt("%s: %s", type_name(f->type), f->allowed) : xstrdup(type_name(f->type));
        printf("  %-*s  %-12s  %-14s  %s\n", w, f->name, type, f->default_json ? f->default_json : "(required)",
               f->doc ? f->doc : "");
        free(type);
    }
    printf("\ninputs (roles):\n");
    if (!k->roles || !k->roles->name) printf("  (none: a source)\n");
    for (const hx_role *r = k->roles; r && r->name; r++)
        printf("  %-12s from %s%s  %s\n", r->name, r->accepts ? r->accepts : "any kind", r->optional ? " (optional)" : "",
               r->doc ? r->doc : "");
    printf("\nA recipe stage of this kind: `kind: %s` and its parameters under `with:` (docs/recipes.md).\n", k->name);
}

/* ---- docs/cli.md's option tables ---- */

/* TEXT with Markdown table cells' pipes escaped, xmalloc'd. */
static char *md_cell(const char *text)
{
    char *out = xmalloc(2 * strlen(text) + 1), *o = out;
    for (const char *p = text; *p; p++) {
        if (*p == '|') *o++ = '\\';
        *o++ = *p;
    }
    *o = 0;
    return out;
}

static void md_opt(const hx_opt *o, void *ud)
{
    (void)ud;
    char *spec = opt_spec(o, "-", "`, `"), *help = opt_help(o);
    char *sc = md_cell(spec), *hc = md_cell(help);
    printf("| `%s` | %s%s |\n", sc, hc, o->kind == HX_OPT_LIST ? "" : "");
    free(spec);
    free(help);
    free(sc);
    free(hc);
}

static void md_command(const hx_cmd *cmd, const char *full_name)
{
    char *args = md_cell(cmd->args ? cmd->args : "");
    printf("### hx %s\n\n`hx %s%s%s`: %s\n\n", full_name, full_name, *args ? " " : "", args, cmd->summary);
    free(args);
    if ((cmd->opts && cmd->opts->name) || (cmd->flags & HX_CMD_STORE)) {
        printf("| option | meaning |\n|---|---|\n");
        hx_cmd_each_opt(cmd, md_opt, NULL);
        printf("\n");
    }
    for (const hx_cmd *s = cmd->subs; s && s->name; s++) {
        char *n = xstrfmt("%s %s", full_name, s->name);
        md_command(s, n);
        free(n);
    }
}

/* ---- the man page ---- */

/* TEXT for roff: backslashes and dashes escaped, a leading '.' or '\'' guarded. */
static void roff(const char *text)
{
    if (*text == '.' || *text == '\'') fputs("\\&", stdout);
    for (const char *p = text; *p; p++) {
        if (*p == '\\') fputs("\\e", stdout);
        else if (*p == '-') fputs("\\-", stdout);
        else if (*p == '\n') {
            fputs("\n", stdout);
            if (p[1] == '.' || p[1] == '\'') fputs("\\&", stdout);
        } else putchar(*p);
    }
}

static void man_opt(const hx_opt *o, void *ud)
{
    (void)ud;
    char *spec = opt_spec(o, "-", ", "), *help = opt_help(o);
    printf(".TP\n.B ");
    roff(spec);
    printf("\n");
    roff(help);
    printf("\n");
    free(spec);
    free(help);
}

static void man_command(const hx_cmd *cmd, const char *full_name)
{
    printf(".SS \"hx %s", full_name);
    if (cmd->args && *cmd->args) {
        printf(" ");
        roff(cmd->args);
    }
    printf("\"\n");
    roff(cmd->summary);
    printf(".\n");
    if (cmd->help) {
        printf(".PP\n");
        roff(cmd->help);
        printf("\n");
    }
    if ((cmd->opts && cmd->opts->name) || (cmd->flags & HX_CMD_STORE)) hx_cmd_each_opt(cmd, man_opt, NULL);
    for (const hx_cmd *s = cmd->subs; s && s->name; s++) {
        char *n = xstrfmt("%s %s", full_name, s->name);
        man_command(s, n);
        free(n);
    }
}

static void help_man(void)
{
    printf(".\\\" hx.1 - generated by `hx help --man` from hx's command table (cli/commands.c); do not edit\n");
    printf(".TH HX 1 \"\" \"hx %s\" \"hx manual\"\n", HX_VERSION);
    printf(".SH NAME\nhx \\- a reproducible experiment harness: recipes of stages, a content-addressed store\n");
    printf(".SH SYNOPSIS\n.B hx\n.I command\n.RI [ options ]\n.RI [ arguments ]\n");
    printf(".SH DESCRIPTION\n.B hx\nplans a recipe (YAML) into stage instances, each keyed by the hash of its kind, "
           "parameters and inputs, and executes every instance that is not already in the store, at most once.\n"
           ".B hx help\n.I command\nshows a command's options;\n.B hx help\n.I kind\na stage kind's parameters.\n");
    printf(".SH COMMANDS\n");
    for (const hx_cmd *c = hx_cmd_table(); c->name; c++) man_command(c, c->name);
    printf(".SH STAGE KINDS\n");
    for (const hx_stage_kind *const *k = hx_stage_kinds(); *k; k++) {
        printf(".TP\n.B %s\n", (*k)->name);
        roff((*k)->doc ? (*k)->doc : "");
        printf("\n");
    }
    printf(".SH EXIT STATUS\n.TP\n0\nsuccess\n.TP\n1\na stage failed (the store is consistent)\n.TP\n2\nbad usage or "
           "recipe\n.TP\n3\na store or lock problem; hx fsck found a problem\n.TP\n130\ninterrupted (run again to "
           "resume)\n");
    printf(".SH ENVIRONMENT\n.TP\n.B HX_STORE\nthe store when \\-\\-store is not given (else .hx)\n.TP\n"
           ".B OMP_NUM_THREADS\nthe default number of CPU threads\n.TP\n.B HX_DOT\nthe Graphviz dot program of hx dag "
           "\\-\\-format svg\n");
    printf(".SH FILES\n.TP\n.I .hx/\nthe default store: store/ (entries), runs/ (run records), quarantine/\n");
    printf(".SH SEE ALSO\ndocs/cli.md, docs/recipes.md and docs/architecture.md in hx's source tree.\n");
}

/* ---- shell completion ---- */

typedef struct comp_ctx {
    const char *cur_cmd;
} comp_ctx;

/* The shell code completing a value of kind COMPLETE (or CHOICES). */
static void comp_action(const char *choices, const char *complete)
{
    if (choices) {
        printf("_hx_words \"");
        for (const char *p = choices; *p; p++) putchar(*p == '|' ? ' ' : *p);
        printf("\"");
    } else if (!complete) {
        printf("COMPREPLY=()");
    } else if (!strcmp(complete, "file")) {
        printf("_hx_files");
    } else if (!strcmp(complete, "dir")) {
        printf("_hx_dirs");
    } else if (!strcmp(complete, "recipe")) {
        printf("_hx_recipes");
    } else if (!strcmp(complete, "run")) {
        printf("_hx_runs");
    } else if (!strcmp(complete, "command|kind")) {
        printf("_hx_words \"$_hx_topics\"");
    } else if (strchr(complete, '|') || strchr(complete, ' ')) {
        printf("_hx_words \"");
        for (const char *p = complete; *p; p++) putchar(*p == '|' ? ' ' : *p);
        printf("\"");
    } else {
        BUG("completion kind '%s' has no shell code", complete);
    }
}

static void comp_value_case(const hx_opt *o, void *ud)
{
    (void)ud;
    if (o->kind == HX_OPT_FLAG) return;
    printf("        --%s", o->name);
    if (o->short_name) printf("|-%c", o->short_name);
    printf(") ");
    comp_action(o->choices, o->complete);
    printf("; return ;;\n");
}

static void comp_opt_word(const hx_opt *o, void *ud)
{
    (void)ud;
    printf(" --%s", o->name);
}

static void comp_command(const hx_cmd *c)
{
    printf("        case $prev in\n");
    hx_cmd_each_opt(c, comp_value_case, NULL);
    printf("        esac\n        if [[ $cur == -* ]]; then _hx_words \"--help");
    hx_cmd_each_opt(c, comp_opt_word, NULL);
    printf("\"; return; fi\n        ");
    comp_action(NULL, c->complete_args);
    printf("\n");
}

static void completion_bash(void)
{
    printf("# hx bash completion - generated by `hx completion bash` from hx's command table (cli/commands.c)\n");
    printf("_hx_commands=\"");
    for (const hx_cmd *c = hx_cmd_table(); c->name; c++) printf("%s%s", c == hx_cmd_table() ? "" : " ", c->name);
    printf("\"\n_hx_kinds=\"");
    for (const hx_stage_kind *const *k = hx_stage_kinds(); *k; k++)
        printf("%s%s", k == hx_stage_kinds() ? "" : " ", (*k)->name);
    printf("\"\n_hx_topics=\"$_hx_commands"); /* hx help: commands, and kinds that are not also a command */
    for (const hx_stage_kind *const *k = hx_stage_kinds(); *k; k++)
        if (!hx_cmd_find((*k)->name)) printf(" %s", (*k)->name);
    printf("\"\n");
    printf("_hx_words() { COMPREPLY=($(compgen -W \"$1\" -- \"$cur\")); }\n"
           "_hx_files() { COMPREPLY=($(compgen -f -- \"$cur\")); compopt -o filenames 2>/dev/null; }\n"
           "_hx_dirs() { COMPREPLY=($(compgen -d -- \"$cur\")); compopt -o filenames 2>/dev/null; }\n"
           "_hx_recipes() {\n"
           "    COMPREPLY=($(compgen -f -X '!*.yaml' -- \"$cur\") $(compgen -f -X '!*.yml' -- \"$cur\") "
           "$(compgen -d -- \"$cur\"))\n"
           "    compopt -o filenames 2>/dev/null\n"
           "}\n"
           "# run ids of the store the line names (--store DIR), else $HX_STORE, else .hx\n"
           "_hx_runs() {\n"
           "    local store=${HX_STORE:-.hx} i d ids=latest\n"
           "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
           "        [[ ${COMP_WORDS[i]} == --store ]] && store=${COMP_WORDS[i+1]}\n"
           "    done\n"
           "    for d in \"$store\"/runs/*/; do\n"
           "        d=${d%%/}; d=${d##*/}\n"
           "        [[ -f $store/runs/$d/run.json && $d != latest ]] && ids+=\" $d\"\n"
           "    done\n"
           "    _hx_words \"$ids\"\n"
           "}\n");
    printf("_hx() {\n"
           "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
           "    COMPREPLY=()\n"
           "    if ((COMP_CWORD == 1)); then _hx_words \"$_hx_commands --help --version\"; return; fi\n"
           "    local cmd=${COMP_WORDS[1]}\n");
    for (const hx_cmd *c = hx_cmd_table(); c->name; c++) {
        if (!c->subs) continue;
        printf("    if [[ $cmd == %s ]]; then\n        if ((COMP_CWORD == 2)); then _hx_words \"", c->name);
        for (const hx_cmd *s = c->subs; s->name; s++) printf("%s%s", s == c->subs ? "" : " ", s->name);
        printf("\"; return; fi\n        cmd=\"%s ${COMP_WORDS[2]}\"\n    fi\n", c->name);
    }
    printf("    case $cmd in\n");
    for (const hx_cmd *c = hx_cmd_table(); c->name; c++) {
        for (const hx_cmd *s = c->subs; s && s->name; s++) {
            printf("    \"%s %s\")\n", c->name, s->name);
            comp_command(s);
            printf("        ;;\n");
        }
        if (c->subs) continue;
        printf("    %s)\n", c->name);
        comp_command(c);
        printf("        ;;\n");
    }
    printf("    esac\n}\ncomplete -F _hx hx\n");
}

int cmd_completion(hx_cli *c)
{
    const char *shell = c->args[0];
    if (!strcmp(shell, "zsh")) printf("# hx zsh completion: the bash one through bashcompinit\n"
                                      "autoload -U +X bashcompinit && bashcompinit\n");
    else if (strcmp(shell, "bash")) die(HX_EXIT_USAGE, "hx completion: '%s': expected bash or zsh", shell);
    completion_bash();
    return 0;
}

/* ---- hx help ---- */

static int help_list(void)
{
    printf("usage: hx <command> [<args>]\n\ncommands:\n");
    for (const hx_cmd *c = hx_cmd_table(); c->name; c++) printf("  %-10s %s\n", c->name, c->summary);
    printf("\nstage kinds (hx help KIND):");
    for (const hx_stage_kind *const *k = hx_stage_kinds(); *k; k++) printf(" %s", (*k)->name);
    printf("\n\n'hx help COMMAND' or 'hx COMMAND --help' for one command.\n");
    return 0;
}

/* "hx: 'NAME' is not an hx command (did you mean 'show'?)" as for `hx NAME`, or "... neither an hx command nor a
 * stage kind (did you mean 'finetune'?)" when the closest name is a kind; exits with the usage status. */
static HX_NORETURN void unknown_topic(const char *name, int kinds_only)
{
    const char *names[256];
    size_t n = 0, n_cmds;
    for (const hx_cmd *c = hx_cmd_table(); c->name && n < 128 && !kinds_only; c++) names[n++] = c->name;
    n_cmds = n;
    for (const hx_stage_kind *const *k = hx_stage_kinds(); *k && n < 256; k++) names[n++] = (*k)->name;
    const char *s = hx_suggest(name, names, n);
    int is_cmd = 0;
    for (size_t i = 0; s && i < n_cmds; i++) is_cmd |= names[i] == s;
    fprintf(stderr, "hx: '%s' is %s%s%s%s. See 'hx help'.\n", name,
            kinds_only ? "not a stage kind" : is_cmd ? "not an hx command" : "neither an hx command nor a stage kind",
            s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
    exit(HX_EXIT_USAGE);
}

int cmd_help(hx_cli *c)
{
    int kind = hx_cli_given(c, "kind");
    if (hx_cli_given(c, "man")) {
        help_man();
        return 0;
    }
    if (hx_cli_given(c, "markdown")) {
        if (c->n_args) {
            const hx_cmd *cmd = hx_cmd_find(c->args[0]);
            if (!cmd) unknown_topic(c->args[0], 0);
            md_command(cmd, cmd->name);
        } else {
            for (const hx_cmd *cmd = hx_cmd_table(); cmd->name; cmd++) md_command(cmd, cmd->name);
        }
        return 0;
    }
    if (!c->n_args) {
        if (kind) die(HX_EXIT_USAGE, "hx help --kind: which kind? See 'hx help'.");
        return help_list();
    }
    const char *name = c->args[0];
    const hx_cmd *cmd = kind ? NULL : hx_cmd_find(name);
    if (cmd) {
        if (c->n_args == 2) {
            const hx_cmd *sub = hx_cmd_find_sub(cmd, c->args[1]);
            if (!sub) die(HX_EXIT_USAGE, "hx help: '%s' has no subcommand '%s'. See 'hx help %s'.", name, c->args[1], name);
            char *full = xstrfmt("%s %s", name, sub->name);
            hx_help_command(stdout, sub, full);
            free(full);
            return 0;
        }
        hx_help_command(stdout, cmd, name);
        if (hx_stage_kind_find(name)) printf("\n(%s is also a stage kind: hx help --kind %s)\n", name, name);
        return 0;
    }
    const hx_stage_kind *k = hx_stage_kind_find(name);
    if (!k) unknown_topic(name, kind);
    if (c->n_args > 1) die(HX_EXIT_USAGE, "hx help: a stage kind takes no second name");
    help_kind(k);
    return 0;
}
