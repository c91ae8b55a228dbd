/* stage_bench.c - the `bench` stage kind: real benchmark files (lm-eval / HF JSONL) as items an eval asks, nothing to train on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stages/stage.h"
#include "world/world.h"

static const hx_field bench_fields[] = {
    {"files", HX_T_PATHLIST, NULL, NULL,
     "benchmark JSONL files (MMLU, ARC, HellaSwag, {question, choices, answer}), one task per file, named by its base "
     "name; paths relative to the recipe's folder, content keyed (external inputs, docs/recipes.md)"},
    {"format", HX_T_STR, "\"auto\"", "auto|mcq|open|cloze",
     "how the items are asked (docs/eval.md): auto = a row's own \"format\" (hx's item form), else cloze for HellaSwag "
     "and mcq (lettered options) for the others; open asks without options and scores the choice texts (lm-eval's ARC)"},
    {NULL, 0, NULL, NULL, NULL},
};


static const hx_role bench_roles[] = {{NULL, NULL, 0, NULL}};

/* The rows of a JSONL file as read (blank lines skipped, as world_jsonl_parse does): each item keeps its row as
 * "doc", the document lm-eval's samples show and hash. */
static int attach_docs(const char *path, json_t *items)
{
    char *data;
    size_t len;
    if (hx_read_file(path, &data, &len)) return -1;
    size_t k = 0;
    int rc = 0;
    for (char *p = data, *nl; !rc && p < data + len; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(data + len - p));
        if (!nl) nl = data + len;
        if (strspn(p, " \t\r\f\v") >= (size_t)(nl - p)) continue;
        json_t *row = json_loadb(p, (size_t)(nl - p), 0, NULL);
        json_t *it = json_array_get(items, k++);
        if (!row || !it) rc = error("%s: row %zu changed while it was read", path, k);
        else json_object_set_new(it, "doc", row);
    }
    if (!rc && k != json_array_size(items)) rc = error("%s: changed while it was read", path);
    free(data);
    return rc;
}

/* A row in hx's own item form names its format ("format": "prose"); NULL for any other row. */
static const char *row_format(json_t *row)
{
    static const char *const formats[] = {"mcq", "open", "cloze", "prose"};
    const char *f = json_string_value(json_object_get(row, "format"));
    for (int i = 0; f && i < 4; i++)
        if (!strcmp(f, formats[i])) return formats[i];
    return NULL;
}

/* What world_jsonl_tasks leaves to the bench kind: the items keep their rows ("doc") and get their format; the
 * task's entry in stats.json names the file, its SHA-256 and its number of items. */
typedef struct bench_files {
    const char *format;
    json_t *digests; /* path -> sha256, for the manifest's metrics */
} bench_files;

static json_t *bench_task(void *arg, size_t i, const char *path, const char *task, json_t *items)
{
    bench_files *b = arg;
    char hex[65];
    (void)task;
    if (hx_sha256_file_hex(path, hex)) {
        error_prefix("files[%zu]", i);
        return NULL;
    }
    if (attach_docs(path, items)) return NULL;
    size_t j;
    json_t *it;
    json_array_foreach(items, j, it) {
        const char *f = strcmp(b->format, "auto") ? b->format : row_format(json_object_get(it, "doc"));
        if (f) json_object_set_new(it, "format", json_string(f));
    }
    json_object_set_new(b->digests, path, json_string(hex));
    /* the file's base name, not its path: the key holds the content only, so the output must not depend on where
     * the file lies (the path goes to the manifest's metrics) */
    const char *base = strrchr(path, '/');
    return json_pack("{s:s,s:s,s:I}", "file", base ? base + 1 : path, "sha256", hex, "items",
                     (json_int_t)json_array_size(items));
}

static int bench_run(hx_stage_ctx *c)
{
    json_t *files = hx_with_json(c, "files");
    const char *format = hx_with_str(c, "format");
    if (!json_array_size(files)) return error("stage '%s': `files` lists no benchmark file", c->stage_name);
    json_t *tasks = json_object(), *digests = json_object();
    bench_files b = {.format = format, .digests = digests};
    int total = world_jsonl_tasks(files, c->out_dir, tasks, bench_task, &b);
    int rc = total < 0 ? error_prefix("stage '%s'", c->stage_name) : 0;
    if (!rc) {
        json_t *stats = json_pack("{s:s,s:O,s:i}", "format", format, "tasks", tasks, "items", total);
        char *s = json_dumps(stats, JSON_INDENT(2) | JSON_PRESERVE_ORDER), *text = xstrfmt("%s\n", s);
        char *path = hx_path_join(c->out_dir, "stats.json");
        rc = hx_write_file(path, text, strlen(text));
        free(path);
        free(text);
        free(s);
        json_decref(stats);
    }
    if (!rc && c->metrics) {
        json_object_set_new(c->metrics, "bench_items", json_integer(total));
        json_object_set(c->metrics, "files_sha256", digests);
    }
    if (!rc) log_info("%d items from %zu files", total, json_array_size(files));
    json_decref(tasks);
    json_decref(digests);
    return rc;
}

const hx_stage_kind hx_kind_bench = {
    .name = "bench",
    .version = 1,
    .doc = "real benchmark files (MMLU, ARC, HellaSwag, generic JSONL) as bench/<task>.jsonl for an eval's `bench` input",
    .fields = bench_fields,
    .roles = bench_roles,
    .needs_gpu = 0,
    .run = bench_run,
};
