/* main.c - `hx`: dispatches the subcommand through one sorted command table (git.c style). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "interp/recipe.h"

/* "hx: 'NAME' is not an hx command (did you mean 'X'?). See 'hx help'." on stderr; returns the usage status. */
static int unknown_command(const char *name)
{
    const char *names[64];
    size_t n = 0;
    for (const hx_cmd *c = hx_cmd_table(); c->name && n < 64; c++) names[n++] = c->name;
    const char *s = hx_suggest(name, names, n);
    fprintf(stderr, "hx: '%s' is not an hx command%s%s%s. See 'hx help'.\n", name, s ? " (did you mean '" : "",
            s ? s : "", s ? "'?)" : "");
    return HX_EXIT_USAGE;
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
static void omp_wait_default(const hx_cmd *cmd, char **argv)
{
    if (!(cmd->flags & HX_CMD_COMPUTE) || getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    setenv("GOMP_SPINCOUNT", "10000", 1);
    execv("/proc/self/exe", argv); /* returns only on failure: then go on as we are */
}

int main(int argc, char **argv)
{
#ifdef HX_TEST_BUILD
    hx_test_kinds_register();
#endif
    char *help_argv[] = {"help", NULL};
    if (argc < 2) {
        hx_cli c;
        hx_cli_parse(&c, hx_cmd_find("help"), "help", 1, help_argv);
        cmd_help(&c);
        return HX_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) name = "help";
    if (!strcmp(name, "--version")) name = "version";
    const hx_cmd *cmd = hx_cmd_find(name);
    if (!cmd) return unknown_command(name);
    omp_wait_default(cmd, argv);
    int ac = argc - 1;
    char **av = argv + 1;
    char *full = xstrdup(name);
    /* hx bench SUB: the subcommand's row parses the rest */
    if (cmd->subs && ac > 1 && strcmp(av[1], "--help") && strcmp(av[1], "-h")) {
        const hx_cmd *sub = hx_cmd_find_sub(cmd, av[1]);
        if (!sub) {
            const char *names[64];
            size_t n = 0;
            for (const hx_cmd *s = cmd->subs; s->name && n < 64; s++) names[n++] = s->name;
            const char *s = hx_suggest(av[1], names, n);
            die(HX_EXIT_USAGE, "hx %s: unknown subcommand '%s'%s%s%s; see 'hx %s --help'", name, av[1],
                s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "", name);
        }
        free(full);
        full = xstrfmt("%s %s", name, sub->name);
        cmd = sub;
        ac--;
        av++;
    } else if (cmd->subs) {
        hx_help_command(ac > 1 ? stdout : stderr, cmd, name);
        return ac > 1 ? HX_EXIT_OK : HX_EXIT_USAGE;
    }
    hx_cli c;
    hx_cli_parse(&c, cmd, full, ac, av);
    int rc = cmd->fn(&c);
    hx_cli_release(&c);
    free(full);
    return rc;
}
