/* stage_data.c - the `data` stage kind: builds the offline world (corpus, chat pairs, benchmarks) or loads JSONL benchmarks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stages/stage.h"
#include "world/world.h"

/*
 * The sizes of the world. A recipe gives them from recipes/base/scales.yaml (scales.<scale>.data); a size it
 * leaves out takes the default below, which is the tiny scale's. The plan writes defaults into `with` before
 * the key is computed, so the key always holds every size the world was built with (docs/data.md).
 */
static const hx_field data_fields[] = {
    {"seed", HX_T_INT, "0", NULL, "seed of fact selection, splits, templates, scattering and choice order"},
    {"source", HX_T_STR, "\"world\"", "world|jsonl", "world: build from the pinned packages; jsonl: load benchmark files"},
    {"jsonl", HX_T_PATHLIST, "[]", NULL, "source jsonl: MMLU/ARC/HellaSwag-style JSONL files, one task per file (content keyed)"},
    {"n_facts", HX_T_INT, "50", NULL, "facts per relation family (0: every usable fact)"},
    {"paraphrases", HX_T_INT, "12", NULL, "prose mentions of each pretrain/instruct/eval fact, each another template"},
    {"brown_files", HX_T_INT, "4", NULL, "Brown files in the corpus (0: all not held out for cloze)"},
    {"cloze_files", HX_T_INT, "2", NULL, "Brown files held out for cloze_brown"},
    {"cloze_items", HX_T_INT, "40", NULL, "cloze_brown items (rounded down to a multiple of 4)"},
    {"instruct_per_fact", HX_T_INT, "3", NULL, "chat pairs per instruct fact (direct, mcq, short styles in turn)"},
    {"mix_chat", HX_T_INT, "2", NULL, "copies of every instruct chat pair mixed into corpus/pretrain.txt (0: none)"},
    {"mix_qa", HX_T_INT, "3", NULL, "chat pairs about every pretrain fact mixed into corpus/pretrain.txt (0: none)"},
    {"bench_max", HX_T_INT, "0", NULL, "items per knowledge task and split (0: all eval/heldout facts)"},
    {"min_brown_freq", HX_T_INT, "3", NULL, "a WordNet word must occur this often in Brown, mostly in its part of speech"},
    {"frac_instruct", HX_T_NUM, "0.3", NULL, "fraction of each family's facts in the instruct split"},
    {"frac_eval", HX_T_NUM, "0.3", NULL, "fraction in the eval split (asked by the benchmarks)"},
    {"frac_heldout", HX_T_NUM, "0.1", NULL, "fraction in the heldout split (nowhere in text; chance-level control)"},
    {"third_party", HX_T_STR, "\"\"", NULL, "packages directory (default: $HX_THIRD_PARTY or third_party/ next to hx)"},
    {NULL, 0, NULL, NULL, NULL},
};

static const hx_role data_roles[] = {{NULL, NULL, 0, NULL}};

/* source: jsonl: a task's entry in stats.json holds its number of items and its file */
static json_t *jsonl_task(void *arg, size_t i, const char *path, const char *task, json_t *items)
{
    (void)arg, (void)i, (void)task;
    return json_pack("{s:i,s:s}", "items", (int)json_array_size(items), "file", path);
}

static int run_jsonl(hx_stage_ctx *c)
{
    json_t *paths = hx_with_json(c, "jsonl");
    if (!json_array_size(paths))
        return error("stage '%s': source: jsonl needs `jsonl: [FILE.jsonl, ...]`", c->stage_name);
    json_t *stats = json_object(), *bt = json_object();
    int total = world_jsonl_tasks(paths, c->out_dir, bt, jsonl_task, NULL);
    int rc = total < 0 ? error_prefix("stage '%s'", c->stage_name) : 0;
    json_object_set_new(stats, "source", json_string("jsonl"));
    json_object_set_new(stats, "bench", bt);
    if (rc == 0) {
        char *path = hx_path_join(c->out_dir, "stats.json");
        char *s = json_dumps(stats, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        char *text = xstrfmt("%s\n", s);
        rc = hx_write_file(path, text, strlen(text));
        free(text);
        free(s);
        free(path);
        path = hx_path_join(c->out_dir, "README.md");
        text = xstrfmt("# Data (hx `data` stage, source: jsonl)\n\n%d items from %zu JSONL files, normalised to "
                       "hx items in bench/<task>.jsonl (docs/data.md).\n", total, json_array_size(paths));
        if (rc == 0) rc = hx_write_file(path, text, strlen(text));
        free(text);
        free(path);
    }
    if (rc == 0 && c->metrics) json_object_set_new(c->metrics, "bench_items", json_integer(total));
    json_decref(stats);
    return rc;
}

static int data_run(hx_stage_ctx *c)
{
    const char *source = hx_with_str(c, "source");
    if (!strcmp(source, "jsonl")) return run_jsonl(c);
    world_params p = {
        .seed = (uint64_t)hx_with_int(c, "seed"),
        .n_facts = (int)hx_with_int(c, "n_facts"),
        .paraphrases = (int)hx_with_int(c, "paraphrases"),
        .brown_files = (int)hx_with_int(c, "brown_files"),
        .cloze_files = (int)hx_with_int(c, "cloze_files"),
        .cloze_items = (int)hx_with_int(c, "cloze_items"),
        .instruct_per_fact = (int)hx_with_int(c, "instruct_per_fact"),
        .mix_chat = (int)hx_with_int(c, "mix_chat"),
        .mix_qa = (int)hx_with_int(c, "mix_qa"),
        .bench_max = (int)hx_with_int(c, "bench_max"),
        .min_brown_freq = (int)hx_with_int(c, "min_brown_freq"),
        .frac_instruct = hx_with_num(c, "frac_instruct"),
        .frac_eval = hx_with_num(c, "frac_eval"),
        .frac_heldout = hx_with_num(c, "frac_heldout"),
        .third_party = hx_with_str(c, "third_party"),
    };
    log_info("building the world (seed %llu, %d facts per family, %d paraphrases)",
             (unsigned long long)p.seed, p.n_facts, p.paraphrases);
    world w;
    if (world_build(&p, &w) < 0) return error_prefix("stage '%s'", c->stage_name);
    int rc = world_write(&w, c->out_dir);
    if (rc == 0 && c->metrics) {
        json_t *st = w.stats;
        json_object_set_new(c->metrics, "facts", json_integer(w.facts.n));
        json_object_set(c->metrics, "words", json_object_get(json_object_get(st, "corpus"), "words"));
        json_object_set_new(c->metrics, "instruct_pairs", json_integer((json_int_t)json_array_size(w.instruct)));
        int items = 0;
        for (int t = 0; t < w.n_tasks; t++) items += (int)json_array_size(w.tasks[t].items);
        json_object_set_new(c->metrics, "bench_items", json_integer(items));
        json_object_set_new(c->metrics, "build_seconds", hx_json_num(w.seconds));
    }
    if (rc == 0)
        log_info("%d facts, %d corpus words, %zu chat pairs in %.2fs", w.facts.n,
                 (int)json_integer_value(json_object_get(json_object_get(w.stats, "corpus"), "words")),
                 json_array_size(w.instruct), w.seconds);
    world_free(&w);
    return rc < 0 ? error_prefix("stage '%s'", c->stage_name) : 0;
}

const hx_stage_kind hx_kind_data = {
    .name = "data",
    .version = 7, /* 2: corpus/generic.txt and corpus/chat.txt; 3: bench/kn_prose_<family>.jsonl;
                   * 4: heldout distractors only objects no mentioned fact has;
                   * 5: instruct MCQ distractors never a heldout-only object;
                   * 6: corpus/generic.txt falls back to the corpus's Brown files without the facts (never empty);
                   * 7: mix_qa (chat pairs about the pretrain facts in corpus/pretrain.txt), stats.corpus.mix_share */
    .doc = "builds the offline world: pretraining corpus, chat pairs and knowledge benchmarks (docs/data.md)",
    .fields = data_fields,
    .roles = data_roles,
    .needs_gpu = 0,
    .run = data_run,
};
