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

static int bench_run(hx_stage_ctx *c)
{
    json_t *files = hx_with_json(c, "files");
    const char *format = hx_with_str(c, "format");
    if (!json_array_size(files)) return error("stage '%s': `files` lists no benchmark file", c->stage_name);
    char *bench = hx_path_join(c->out_dir, "bench");
    if (hx_mkdir_p(bench) < 0) {
        free(bench);
        return -1;
    }
    json_t *tasks = json_object(), *digests = json_object();
    int rc = 0, total = 0;
    size_t i;
    json_t *p;
    json_array_foreach(files, i, p) {
        const char *path = json_string_value(p);
        char *task = world_jsonl_task_name(path), hex[65];
        json_t *items = json_array();
        if (json_object_get(tasks, task)) rc = error("stage '%s': two files give the task name '%s'", c->stage_name, task);
        if (!rc && hx_sha256_file_hex(path, hex)) rc = error_prefix("stage '%s': files[%zu]", c->stage_name, i);
        if (!rc && (world_jsonl_load(path, task, items) || attach_docs(path, items)))
            rc = error_prefix("stage '%s'", c->stage_name);
        size_t j;
        json_t *it;
        json_array_foreach(items, j, it) {
            if (rc) break;
            const char *f = strcmp(format, "auto") ? format : row_format(json_object_get(it, "doc"));
            if (f) json_object_set_new(it, "format", json_string(f));
        }
        if (!rc) {
            char *out = xstrfmt("%s/%s.jsonl", bench, task);
            rc = world_write_jsonl(out, items);
            free(out);
            /* the file's base name, not its path: the key holds the content only, so the output must not
             * depend on where the file lies (the path goes to the manifest's metrics) */
            const char *base = strrchr(path, '/');
            json_object_set_new(tasks, task, json_pack("{s:s,s:s,s:I}", "file", base ? base + 1 : path, "sha256", hex,
                                                       "items", (json_int_t)json_array_size(items)));
            json_object_set_new(digests, path, json_string(hex));
            total += (int)json_array_size(items);
        }
        json_decref(items);
        free(task);
        if (rc) break;
    }
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
    free(bench);
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
