/* artifact.c - writes a built world as its artifact directory: facts.jsonl, corpus/, instruct.jsonl, bench/, stats.json, README.md. */
#include "world/world.h"
#include "world/world_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void jsonl_append(hx_sbuf *b, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s) BUG("json_dumps failed");
    hx_sb_puts(b, s);
    hx_sb_putc(b, '\n');
    free(s);
}

int world_write_jsonl(const char *path, const json_t *array)
{
    hx_sbuf b = {0};
    size_t i;
    json_t *v;
    json_array_foreach(array, i, v) jsonl_append(&b, v);
    int rc = hx_write_file(path, b.s ? b.s : "", b.len);
    hx_sb_free(&b);
    return rc;
}

static json_t *fact_json(const world_fact *f)
{
    const world_relation *rels = world_relations(NULL);
    json_t *o = json_object(), *al = json_array();
    for (int i = 0; i < f->n_aliases; i++) json_array_append_new(al, json_string(f->aliases[i]));
    json_object_set_new(o, "fact_id", json_string(f->id));
    json_object_set_new(o, "subject", json_string(f->subject));
    json_object_set_new(o, "relation", json_string(rels[f->rel].name));
    json_object_set_new(o, "object", json_string(f->object));
    json_object_set_new(o, "aliases", al);
    json_object_set_new(o, "family", json_string(world_family_name(rels[f->rel].family)));
    json_object_set_new(o, "source", json_string(rels[f->rel].source));
    json_object_set_new(o, "split", json_string(world_split_name(f->split)));
    return o;
}

static void readme_item(hx_sbuf *b, const json_t *it)
{
    hx_sb_printf(b, "- %s\n", json_string_value(json_object_get(it, "question")));
    size_t i;
    json_t *c;
    int ans = (int)json_integer_value(json_object_get(it, "answer"));
    json_array_foreach(json_object_get(it, "choices"), i, c)
        hx_sb_printf(b, "  %c. %s%s\n", 'A' + (int)i, json_string_value(c), (int)i == ans ? "   <- answer" : "");
}

static char *readme(const world *w)
{
    hx_sbuf b = {0};
    hx_sb_puts(&b, "# Data world (hx `data` stage)\n\n"
                  "Built offline from pinned packages: Brown corpus, WordNet 3.1, world-countries. "
                  "Layout and formats: docs/data.md in the hx repository.\n\n");
    json_t *fs = json_object_get(w->stats, "facts");
    json_t *bs = json_object_get(fs, "by_split");
    hx_sb_printf(&b, "Facts: %d selected of %d usable (pretrain %d, instruct %d, eval %d, heldout %d). ",
                w->facts.n, w->usable.n, (int)json_integer_value(json_object_get(bs, "pretrain")),
                (int)json_integer_value(json_object_get(bs, "instruct")),
                (int)json_integer_value(json_object_get(bs, "eval")),
                (int)json_integer_value(json_object_get(bs, "heldout")));
    json_t *cs = json_object_get(w->stats, "corpus");
    hx_sb_printf(&b, "Corpus: %d documents, %d words. Chat pairs: %zu.\n\n",
                (int)json_integer_value(json_object_get(cs, "documents")),
                (int)json_integer_value(json_object_get(cs, "words")), json_array_size(w->instruct));
    hx_sb_puts(&b, "## Facts (first 5 of facts.jsonl)\n\n");
    const world_relation *rels = world_relations(NULL);
    for (int i = 0; i < w->facts.n && i < 5; i++) {
        const world_fact *f = &w->facts.f[i];
        hx_sb_printf(&b, "- `%s` (%s): %s | %s | %s\n", f->id, world_split_name(f->split), f->subject,
                    rels[f->rel].name, f->object);
    }
    hx_sb_puts(&b, "\n## Corpus (start of corpus/pretrain.txt)\n\n```\n");
    const char *c = w->corpus;
    for (int lines = 0; *c && lines < 6; lines++) {
        const char *e = strchr(c, '\n');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        if (n > 400) {
            hx_sb_add(&b, c, 400);
            hx_sb_puts(&b, " ...");
        } else {
            hx_sb_add(&b, c, n);
        }
        hx_sb_putc(&b, '\n');
        c += n + (e ? 1 : 0);
    }
    hx_sb_puts(&b, "```\n\n## Chat pairs (first 3 of instruct.jsonl)\n\n");
    for (size_t i = 0; i < json_array_size(w->instruct) && i < 3; i++) {
        json_t *o = json_array_get(w->instruct, i), *m = json_object_get(o, "messages");
        hx_sb_printf(&b, "- (%s) user: %s\n  assistant: %s\n", json_string_value(json_object_get(o, "style")),
                    json_string_value(json_object_get(json_array_get(m, 0), "content")),
                    json_string_value(json_object_get(json_array_get(m, 1), "content")));
    }
    hx_sb_puts(&b, "\n## Benchmarks (first item of each task)\n\n");
    for (int t = 0; t < w->n_tasks; t++) {
        hx_sb_printf(&b, "### %s (%zu items)\n\n", w->tasks[t].name, json_array_size(w->tasks[t].items));
        if (json_array_size(w->tasks[t].items)) readme_item(&b, json_array_get(w->tasks[t].items, 0));
        hx_sb_putc(&b, '\n');
    }
    return hx_sb_take(&b);
}

int world_write(const world *w, const char *out_dir)
{
    char *corpus_dir = hx_path_join(out_dir, "corpus"), *bench_dir = hx_path_join(out_dir, "bench");
    int rc = -1;
    if (hx_mkdir_p(corpus_dir) < 0 || hx_mkdir_p(bench_dir) < 0) goto out;
    json_t *facts = json_array();
    for (int i = 0; i < w->facts.n; i++) json_array_append_new(facts, fact_json(&w->facts.f[i]));
    char *path = hx_path_join(out_dir, "facts.jsonl");
    rc = world_write_jsonl(path, facts);
    free(path);
    json_decref(facts);
    if (rc < 0) goto out;
    rc = -1;
    path = hx_path_join(corpus_dir, "pretrain.txt");
    int r = hx_write_file(path, w->corpus, w->corpus_len);
    free(path);
    if (r < 0) goto out;
    path = hx_path_join(corpus_dir, "generic.txt");
    r = hx_write_file(path, w->generic, w->generic_len);
    free(path);
    if (r < 0) goto out;
    /* the instruction pairs as plain documents (prompt + completion in the chat template), for distilling on
     * chat text (the dataset-selection ablation) */
    hx_sbuf chat = {0};
    for (size_t i = 0; i < json_array_size(w->instruct); i++) {
        json_t *pair = json_array_get(w->instruct, i);
        hx_sb_puts(&chat, json_string_value(json_object_get(pair, "prompt")));
        hx_sb_puts(&chat, json_string_value(json_object_get(pair, "completion")));
        hx_sb_puts(&chat, WORLD_DOC_BOUNDARY "\n");
    }
    path = hx_path_join(corpus_dir, "chat.txt");
    r = hx_write_file(path, chat.s ? chat.s : "", chat.len);
    hx_sb_free(&chat);
    free(path);
    if (r < 0) goto out;
    path = hx_path_join(out_dir, "instruct.jsonl");
    r = world_write_jsonl(path, w->instruct);
    free(path);
    if (r < 0) goto out;
    for (int t = 0; t < w->n_tasks; t++) {
        char *name = xstrfmt("%s.jsonl", w->tasks[t].name);
        path = hx_path_join(bench_dir, name);
        r = world_write_jsonl(path, w->tasks[t].items);
        free(name);
        free(path);
        if (r < 0) goto out;
    }
    char *s = json_dumps(w->stats, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
    path = hx_path_join(out_dir, "stats.json");
    hx_sbuf sb = {0};
    hx_sb_puts(&sb, s);
    hx_sb_putc(&sb, '\n');
    r = hx_write_file(path, sb.s, sb.len);
    hx_sb_free(&sb);
    free(s);
    free(path);
    if (r < 0) goto out;
    char *md = readme(w);
    path = hx_path_join(out_dir, "README.md");
    r = hx_write_file(path, md, strlen(md));
    free(md);
    free(path);
    if (r < 0) goto out;
    rc = 0;
out:
    free(corpus_dir);
    free(bench_dir);
    return rc;
}
