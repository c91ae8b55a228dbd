/* jsonl.c - loaders for lm-eval / HF-datasets style JSONL benchmarks (MMLU, ARC, HellaSwag, hx items) into hx items. */
#include "world/world.h"
#include "world/world_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Answer given as an index, a letter ("B") or a digit string ("1"); -1 if none of these. */
static int answer_index(json_t *v, json_t *labels)
{
    if (json_is_integer(v)) return (int)json_integer_value(v);
    const char *s = json_string_value(v);
    if (!s || !*s) return -1;
    if (labels) { /* ARC: the key is one of choices.label */
        size_t i;
        json_t *l;
        json_array_foreach(labels, i, l) {
            const char *ls = json_string_value(l);
            if (ls && !strcmp(ls, s)) return (int)i;
        }
        return -1;
    }
    if (!s[1] && s[0] >= 'A' && s[0] <= 'Z') return s[0] - 'A';
    char *e;
    long n = strtol(s, &e, 10);
    return *e || e == s ? -1 : (int)n;
}

static int parse_item(const char *name, int lineno, json_t *o, const char *task, int n, json_t *items)
{
    if (!json_is_object(o)) return error("%s:%d: expected a JSON object per line", name, lineno);
    const char *format = "mcq";
    json_t *choices = NULL, *labels = NULL, *ans = NULL;
    char *question = NULL;
    json_t *endings = json_object_get(o, "endings");
    if (endings) { /* HellaSwag: ctx (or ctx_a + ctx_b), endings, label */
        const char *ctx = json_string_value(json_object_get(o, "ctx"));
        const char *a = json_string_value(json_object_get(o, "ctx_a"));
        const char *b = json_string_value(json_object_get(o, "ctx_b"));
        if (ctx) question = xstrdup(ctx);
        else if (a) question = b && *b ? xstrfmt("%s %s", a, b) : xstrdup(a);
        else return error("%s:%d: HellaSwag item without 'ctx' or 'ctx_a'", name, lineno);
        choices = endings;
        ans = json_object_get(o, "label");
        format = "cloze";
        if (!ans) { free(question); return error("%s:%d: HellaSwag item without 'label'", name, lineno); }
    } else {
        const char *q = json_string_value(json_object_get(o, "question"));
        if (!q) return error("%s:%d: no string 'question' (expected MMLU question/choices/answer, ARC "
                             "question/choices{text,label}/answerKey or HellaSwag ctx/endings/label)", name, lineno);
        question = xstrdup(q);
        json_t *c = json_object_get(o, "choices");
        if (json_is_object(c)) { /* ARC */
            choices = json_object_get(c, "text");
            labels = json_object_get(c, "label");
            ans = json_object_get(o, "answerKey");
            if (!json_is_array(labels) || !json_is_array(choices) || json_array_size(labels) != json_array_size(choices)) {
                free(question);
                return error("%s:%d: ARC 'choices' needs arrays 'text' and 'label' of equal length", name, lineno);
            }
            if (!ans) { free(question); return error("%s:%d: ARC item without 'answerKey'", name, lineno); }
        } else {
            choices = c;
            ans = json_object_get(o, "answer");
            if (!ans) ans = json_object_get(o, "label");
            if (!ans) { free(question); return error("%s:%d: item without 'answer'", name, lineno); }
        }
    }
    if (!json_is_array(choices) || json_array_size(choices) < 2) {
        free(question);
        return error("%s:%d: 'choices' must be a list of at least 2 strings", name, lineno);
    }
    json_t *cs = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(choices, i, v) {
        if (!json_is_string(v)) {
            json_decref(cs);
            free(question);
            return error("%s:%d: choice %zu is not a string", name, lineno, i);
        }
        json_array_append(cs, v);
    }
    int a = answer_index(ans, labels);
    if (a < 0 || (size_t)a >= json_array_size(cs)) {
        json_decref(cs);
        free(question);
        return error("%s:%d: answer does not name one of the %zu choices (index, letter A.., or ARC label)",
                     name, lineno, json_array_size(choices));
    }
    json_t *item = json_object();
    char id[96];
    snprintf(id, sizeof id, "%s-%05d", task, n);
    json_object_set_new(item, "doc_id", json_string(id));
    json_object_set_new(item, "fact_id", json_null());
    json_object_set_new(item, "task", json_string(task));
    json_object_set_new(item, "split", json_string("eval"));
    json_object_set_new(item, "format", json_string(format));
    json_object_set_new(item, "question", json_string(question));
    json_object_set_new(item, "choices", cs);
    json_object_set_new(item, "answer", json_integer(a));
    json_object_set_new(item, "target", json_deep_copy(json_array_get(cs, (size_t)a)));
    json_t *subj = json_object_get(o, "subject");
    if (json_is_string(subj)) json_object_set(item, "subject", subj);
    json_t *src = json_object_get(o, "id");
    if (json_is_string(src) || json_is_integer(src)) json_object_set(item, "source_id", src);
    json_array_append_new(items, item);
    free(question);
    return 0;
}

int world_jsonl_parse(const char *name, const char *data, size_t len, const char *task, json_t *items)
{
    int lineno = 0, n = 0;
    size_t i = 0;
    size_t ln;
    const char *line;
    while ((line = w_next_text_line(data, len, &i, &ln, &lineno))) {
        json_error_t je;
        json_t *o = json_loadb(line, ln, 0, &je);
        if (!o) return error("%s:%d:%d: invalid JSON: %s", name, lineno, je.column, je.text);
        int rc = parse_item(name, lineno, o, task, n, items);
        json_decref(o);
        if (rc < 0) return -1;
        n++;
    }
    if (!n) return error("%s: no items (expected one JSON object per line)", name);
    return 0;
}

char *world_jsonl_task_name(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    char *s = xstrdup(b);
    size_t n = strlen(s);
    if (n > 6 && !strcmp(s + n - 6, ".jsonl")) s[n - 6] = 0;
    for (char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-'))
            *p = '_';
    return s;
}

int world_jsonl_load(const char *path, const char *task, json_t *items)
{
    char *data;
    size_t len;
    if (hx_read_file(path, &data, &len) < 0) return -1;
    int rc = world_jsonl_parse(path, data, len, task, items);
    free(data);
    return rc;
}

int world_jsonl_tasks(const json_t *paths, const char *out_dir, json_t *tasks, world_jsonl_task_fn each, void *arg)
{
    char *bench = hx_path_join(out_dir, "bench");
    int rc = hx_mkdir_p(bench), total = 0;
    size_t i;
    json_t *p;
    json_array_foreach(paths, i, p) {
        if (rc) break;
        const char *path = json_string_value(p);
        char *task = world_jsonl_task_name(path);
        json_t *items = json_array(), *entry = NULL;
        if (json_object_get(tasks, task)) rc = error("two files give the task name '%s' (%s)", task, path);
        else if (world_jsonl_load(path, task, items) || !(entry = each(arg, i, path, task, items))) rc = -1;
        if (!rc) {
            char *file = xstrfmt("%s/%s.jsonl", bench, task);
            rc = world_write_jsonl(file, items);
            free(file);
            json_object_set_new(tasks, task, entry);
            total += (int)json_array_size(items);
        }
        json_decref(items);
        free(task);
    }
    free(bench);
    return rc ? -1 : total;
}
