/* tokenizer_load.c - reading a tokenizer.json: vocabulary, merges, added tokens, normalizer, pre-tokenizer. */
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

#define MAX_TOKEN_ID (1 << 24) /* ids beyond this are a malformed file, not a vocabulary */

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

typedef int (*load_step_fn)(nn_tokenizer *t, json_t *node, const char *where);

/* A "Sequence" node of tokenizer.json: each element of its list LIST (an array) loaded by LOAD, in order, named
 * WHERE.LIST[i] in messages. */
static int load_sequence(nn_tokenizer *t, json_t *seq, const char *where, const char *list, load_step_fn load)
{
    json_t *items = json_object_get(seq, list);
    if (!json_is_array(items)) return error("%s: %s: Sequence without a \"%s\" list", t->name, where, list);
    size_t i;
    json_t *v;
    json_array_foreach(items, i, v) {
        char sub[96];
        snprintf(sub, sizeof sub, "%s.%s[%zu]", where, list, i);
        if (load(t, v, sub)) return -1;
    }
    return 0;
}

static int load_pretok(nn_tokenizer *t, json_t *pt, const char *where)
{
    if (!pt || json_is_null(pt)) return 0;
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (!type) return error("%s: %s: missing \"type\"", t->name, where);
    if (!strcmp(type, "Sequence")) return load_sequence(t, pt, where, "pretokenizers", load_pretok);
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
    if (!strcmp(type, "Sequence")) return load_sequence(t, n, where, "normalizers", load_normalizer);
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
    hx_strmap_reserve(&t->str, n_tok);
    for (size_t id = 0; id < t->n_ids; id++)
        if (t->tok_str[id]) {
            int added;
            int64_t k = hx_strmap_add(&t->str, t->tok_str[id], strlen(t->tok_str[id]), &added);
            if (!added) return error("%s: token \"%s\" appears twice with different ids", t->name, t->tok_str[id]);
            *hx_strmap_val(&t->str, (size_t)k) = (int64_t)id;
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
        t->byte_id[b] = nn_tok_str_find(t, s, n);
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
    t->pair_cap = t->n_merges ? nn_pow2_at_least(2 * t->n_merges) : 0;
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
        int32_t ia = nn_tok_str_find(t, a, la), ib = nn_tok_str_find(t, b, lb);
        tmp = xmalloc(la + lb + 1);
        memcpy(tmp, a, la); memcpy(tmp + la, b, lb); tmp[la + lb] = 0;
        int32_t ic = nn_tok_str_find(t, tmp, la + lb);
        if (ia < 0 || ib < 0 || ic < 0) {
            error("%s: model.merges[%zu]: \"%.*s\" + \"%.*s\" -> \"%s\": token not in model.vocab", t->name, i,
                  (int)la, a, (int)lb, b, tmp);
            free(tmp);
            return -1;
        }
        free(tmp);
        int32_t r, nid;
        if (nn_tok_pair_find(t, ia, ib, &r, &nid)) continue; /* a repeated merge keeps its first (lowest) rank */
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
