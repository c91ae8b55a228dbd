/* countries.c - world-countries countries.json: capital, region, subregion, languages, currencies, demonyms, borders. */
#include "world/world.h"
#include "world/world_internal.h"

#include <stdlib.h>
#include <string.h>

static char *str_or_null(json_t *v)
{
    const char *s = json_string_value(v);
    return s && *s ? xstrdup(s) : NULL;
}

/* The single value of a one-entry object (languages, currencies), or NULL. */
static json_t *only_value(json_t *obj)
{
    if (!json_is_object(obj) || json_object_size(obj) != 1) return NULL;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) return v;
    return NULL;
}

static int country_cmp(const void *a, const void *b)
{
    return strcmp(((const world_country *)a)->cca3, ((const world_country *)b)->cca3);
}

int world_countries_parse(const char *name, const char *json, size_t len, world_countries *out)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root) return error("%s: line %d, column %d: %s", name, je.line, je.column, je.text);
    if (!json_is_array(root)) {
        json_decref(root);
        return error("%s: expected a JSON array of countries", name);
    }
    size_t n = json_array_size(root);
    out->c = xcalloc(n ? n : 1, sizeof *out->c);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(root, i);
        const char *common = json_string_value(json_object_get(json_object_get(o, "name"), "common"));
        const char *cca3 = json_string_value(json_object_get(o, "cca3"));
        if (!common || !cca3) {
            json_decref(root);
            world_countries_free(out);
            return error("%s: country #%zu has no name.common or cca3", name, i + 1);
        }
        world_country *c = &out->c[out->n++];
        c->name = xstrdup(common);
        c->cca3 = xstrdup(cca3);
        json_t *cap = json_object_get(o, "capital");
        if (json_is_array(cap) && json_array_size(cap) == 1) c->capital = str_or_null(json_array_get(cap, 0));
        c->region = str_or_null(json_object_get(o, "region"));
        c->subregion = str_or_null(json_object_get(o, "subregion"));
        c->language = str_or_null(only_value(json_object_get(o, "languages")));
        c->currency = str_or_null(json_object_get(only_value(json_object_get(o, "currencies")), "name"));
        c->demonym = str_or_null(json_object_get(json_object_get(json_object_get(o, "demonyms"), "eng"), "m"));
        json_t *b = json_object_get(o, "borders");
        if (json_is_array(b)) {
            c->borders = xcalloc(json_array_size(b) + 1, sizeof *c->borders);
            for (size_t k = 0; k < json_array_size(b); k++) {
                const char *s = json_string_value(json_array_get(b, k));
                if (s) c->borders[c->n_borders++] = xstrdup(s);
            }
        }
    }
    json_decref(root);
    qsort(out->c, (size_t)out->n, sizeof *out->c, country_cmp);
    return 0;
}

struct cc_ctx {
    world_countries *out;
    const char *tgz;
    int found;
};

static int cc_want(const char *entry, void *ud)
{
    (void)ud;
    return !strcmp(entry, "package/countries.json");
}

static int cc_take(const char *entry, const char *data, size_t len, void *ud)
{
    struct cc_ctx *c = ud;
    char *name = xstrfmt("%s:%s", c->tgz, entry);
    int rc = world_countries_parse(name, data, len, c->out);
    free(name);
    c->found = 1;
    return rc < 0 ? -1 : 1;
}

int world_countries_load(const char *tgz, world_countries *out)
{
    memset(out, 0, sizeof *out);
    struct cc_ctx c = {out, tgz, 0};
    if (hx_tgz_each(tgz, cc_want, cc_take, &c) < 0) return -1;
    if (!c.found) return error("%s: no package/countries.json in the package", tgz);
    return 0;
}

void world_countries_free(world_countries *cc)
{
    for (int i = 0; i < cc->n; i++) {
        world_country *c = &cc->c[i];
        free(c->name); free(c->cca3); free(c->capital); free(c->region); free(c->subregion);
        free(c->language); free(c->currency); free(c->demonym);
        for (int k = 0; k < c->n_borders; k++) free(c->borders[k]);
        free(c->borders);
    }
    free(cc->c);
    memset(cc, 0, sizeof *cc);
}
