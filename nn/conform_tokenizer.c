/* conform_tokenizer.c - checks a tokenizer against tokenizer_cases.json fixtures (exact ids, decode round trip). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/conform_tokenizer.h"
#include "nn/tokenizer.h"

int nn_conform_tokenizer(const char *dir, const char *tokenizer_json_or_NULL, nn_check *c)
{
    char *path = hx_path_join(dir, "tokenizer_cases.json");
    json_t *root = hx_read_json(path, 0);
    if (!root) {
        free(path);
        nn_check_fail(c, "tokenizer_cases.json", hx_last_error());
        return -1;
    }
    json_t *cases = json_object_get(root, "cases");
    if (!json_is_array(cases)) {
        error("%s: no \"cases\" list", path);
        nn_check_fail(c, "tokenizer_cases.json", hx_last_error());
        json_decref(root);
        free(path);
        return -1;
    }
    if (json_is_true(json_object_get(root, "add_special_tokens")))
        fprintf(c->out, "note: fixture says add_special_tokens true; Qwen3 adds none, so ids are compared as is\n");
    nn_tokenizer *t;
    if (nn_tokenizer_open(&t, tokenizer_json_or_NULL)) {
        nn_check_fail(c, "tokenizer", hx_last_error());
        json_decref(root);
        free(path);
        return -1;
    }
    int fails = c->n_fail;
    size_t i;
    json_t *cs;
    json_array_foreach(cases, i, cs) {
        char name[64];
        snprintf(name, sizeof name, "case[%zu].ids", i);
        json_t *jt = json_object_get(cs, "text"), *jids = json_object_get(cs, "ids");
        if (!json_is_string(jt) || !json_is_array(jids)) {
            nn_check_fail(c, name, "malformed case: needs \"text\" (string) and \"ids\" (list)");
            continue;
        }
        size_t nw = json_array_size(jids);
        int32_t *want = xmalloc((nw ? nw : 1) * sizeof *want);
        for (size_t k = 0; k < nw; k++) want[k] = (int32_t)json_integer_value(json_array_get(jids, k));
        const char *text = json_string_value(jt);
        size_t tlen = json_string_length(jt);
        int32_t *got;
        size_t ng;
        if (nn_tokenizer_encode(t, text, tlen, &got, &ng)) {
            nn_check_fail(c, name, hx_last_error());
        } else {
            nn_check_ints(c, name, got, ng, want, nw);
            char *back;
            size_t blen;
            snprintf(name, sizeof name, "case[%zu].decode", i);
            if (nn_tokenizer_decode(t, got, ng, &back, &blen)) {
                nn_check_fail(c, name, hx_last_error());
            } else {
                /* NFC may change the text: compare with the text only when the encoding round-trips it */
                int same = blen == tlen && !memcmp(back, text, tlen);
                if (same) { fprintf(c->out, "%-52s round trip exact  ok\n", name); c->n_ok++; }
                else {
                    int32_t *again = NULL;
                    size_t na = 0;
                    int stable = !nn_tokenizer_encode(t, back, blen, &again, &na) && na == ng &&
                                 !memcmp(again, got, ng * sizeof *got);
                    if (stable) { fprintf(c->out, "%-52s normalised text, re-encodes equal  ok\n", name); c->n_ok++; }
                    else nn_check_fail(c, name, "decode(encode(text)) differs from text");
                    free(again);
                }
                free(back);
            }
            free(got);
        }
        free(want);
    }
    nn_tokenizer_free(t);
    json_decref(root);
    free(path);
    return c->n_fail == fails ? 0 : -1;
}
