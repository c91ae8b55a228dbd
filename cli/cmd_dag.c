/* cmd_dag.c - `hx dag RECIPE`: the plan as Graphviz dot, nodes coloured by cache state; --format svg runs `dot -Tsvg`. */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"

extern char **environ;

static void dot_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if (*s == '\n') fputs("\\n", f);
        else fputc(*s, f);
    }
    fputc('"', f);
}

/* The plan as dot text, xmalloc'd. */
static char *plan_dot(const hx_recipe *r, const hx_plan *p, const json_t *states)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) die(HX_EXIT_STORE, "hx dag: out of memory");
    fputs("digraph ", f);
    dot_string(f, r->name);
    fputs(" {\n  rankdir=LR;\n  node [shape=box, style=filled, fontname=\"monospace\"];\n", f);
    for (int i = 0; i < p->n; i++) {
        const hx_instance *in = &p->inst[i];
        const char *state = json_string_value(json_object_get(json_array_get(states, (size_t)i), "state"));
        const char *color = !strcmp(state, "cached") ? "palegreen" : !strcmp(state, "stale") ? "orange" : "lightblue";
        char *label = hx_plan_axes_label(in->axes);
        char *text = xstrfmt("%s\n%s%s%.12s\n%s", in->stage_name, label, *label ? "\n" : "", in->key, state);
        fprintf(f, "  i%d [label=", i);
        dot_string(f, text);
        fprintf(f, ", fillcolor=%s];\n", color);
        free(text);
        free(label);
    }
    for (int i = 0; i < p->n; i++)
        for (int j = 0; j < p->inst[i].n_inputs; j++) {
            fprintf(f, "  i%d -> i%d [label=", p->inst[i].input_inst[j], i);
            dot_string(f, p->inst[i].roles[j]);
            fputs("];\n", f);
        }
    fputs("}\n", f);
    fclose(f);
    return buf;
}

/* The dot program: $HX_DOT if set, else `dot` on PATH; NULL when there is none. xmalloc'd. */
static char *find_dot(void)
{
    const char *env = getenv("HX_DOT");
    if (env && *env) return access(env, X_OK) ? NULL : xstrdup(env);
    const char *path = getenv("PATH");
    char *dirs = xstrdup(path ? path : "/usr/bin:/bin"), *save = NULL, *found = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char *p = hx_path_join(*d ? d : ".", "dot");
        if (!access(p, X_OK)) found = p;
        else free(p);
    }
    free(dirs);
    return found;
}

/* Renders dot text to SVG with Graphviz: `dot -Tsvg` fed on its stdin, writing OUT.tmp then renamed to OUT (or, without
 * OUT, our stdout). */
static void render_svg(const char *dot_text, const char *out)
{
    char *dot = find_dot();
    if (!dot)
        die(HX_EXIT_USAGE, "hx dag: --format svg runs Graphviz's `dot`, which is not on PATH: install it (`make deps`, or "
                           "apt-get install graphviz), or print dot text with --format dot");
    int fd[2];
    if (pipe(fd)) die(HX_EXIT_STORE, "hx dag: pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[0], 0);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    posix_spawn_file_actions_addclose(&fa, fd[1]);
    char *tmp = out ? xstrfmt("%s.tmp", out) : NULL;
    char *args[] = {dot, "-Tsvg", tmp ? "-o" : NULL, tmp, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, dot, &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[0]);
    if (rc) die(HX_EXIT_STORE, "hx dag: cannot run %s: %s", dot, strerror(rc));
    void (*old)(int) = signal(SIGPIPE, SIG_IGN); /* dot may exit early on an error: its status says why */
    size_t len = strlen(dot_text), done = 0;
    while (done < len) {
        ssize_t w = write(fd[1], dot_text + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    close(fd[1]);
    signal(SIGPIPE, old);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(st) || WEXITSTATUS(st)) {
        if (tmp) unlink(tmp);
        die(HX_EXIT_STORE, "hx dag: %s -Tsvg failed (%s %d)%s", dot, WIFEXITED(st) ? "exit status" : "signal",
            WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), out ? "; nothing written" : "");
    }
    if (tmp && rename(tmp, out)) die(HX_EXIT_STORE, "hx dag: %s -> %s: %s", tmp, out, strerror(errno));
    free(tmp);
    free(dot);
}

int cmd_dag(hx_cli *c)
{
    const char *format = hx_cli_str(c, "format"), *out = hx_cli_str(c, "output");
    hx_cli_planned v;
    hx_cli_plan_open(c, &v);
    char *text = plan_dot(&v.r, &v.p, v.states);
    if (!strcmp(format, "svg")) {
        fflush(stdout);
        render_svg(text, out);
    } else if (out) {
        if (hx_write_file_atomic(out, text, strlen(text))) die(HX_EXIT_STORE, "hx dag: %s", hx_last_error());
    } else {
        fputs(text, stdout);
    }
    free(text);
    hx_cli_plan_close(&v);
    return 0;
}
