/* textgen.c - text-level greedy generation (chat template, stop strings) and continuation scoring. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/textgen.h"
#include "nn/chat.h"

char *nn_chat_wrap(const char *user)
{
    nn_chat_msg m = {.role = "user", .content = user};
    return nn_chat_render(&m, 1, NN_CHAT_GEN_PROMPT);
}

typedef struct stop_ctx {
    const nn_tokenizer *tok;
    const char *const *stop;
    int n_stop;
} stop_ctx;

/* Stop once the decoded completion contains a stop string. */
static int stop_strings(void *ud, int b, const int32_t *gen, int n)
{
    (void)b;
    stop_ctx *s = ud;
    if (!s->n_stop) return 0;
    char *text;
    size_t len;
    if (nn_tokenizer_decode(s->tok, gen, (size_t)n, &text, &len)) return 1;
    int hit = 0;
    for (int i = 0; i < s->n_stop && !hit; i++) hit = s->stop[i][0] && strstr(text, s->stop[i]) != NULL;
    free(text);
    return hit;
}

static int encode_text(const nn_tokenizer *tok, const char *text, int32_t **ids, int *n)
{
    size_t nn;
    if (nn_tokenizer_encode(tok, text, strlen(text), ids, &nn)) return -1;
    *n = (int)nn;
    return 0;
}

int nn_eos_ids(const nn_config *c, const nn_tokenizer *tok, int32_t ids[NN_MAX_STOP_IDS])
{
    const char *names[2] = {"<|im_end|>", "<|endoftext|>"};
    int n = 0;
    if (c->eos_id >= 0) ids[n++] = c->eos_id;
    for (int i = 0; tok && i < 2; i++) {
        int id = nn_tokenizer_token_id(tok, names[i]), dup = 0;
        for (int j = 0; j < n; j++) dup |= ids[j] == id;
        if (id >= 0 && id < c->vocab && !dup) ids[n++] = id;
    }
    return n;
}

int nn_textgen(nn_model *m, const nn_tokenizer *tok, const char *const *prompts, int n, int batch,
               const nn_textgen_opts *o, char **out)
{
    if (batch < 1) batch = 1;
    int32_t stop_ids[NN_MAX_STOP_IDS];
    int n_stop_ids = o->stop_at_eos ? nn_eos_ids(&m->cfg, tok, stop_ids) : 0;
    stop_ctx sc = {tok, o->stop, o->n_stop};
    nn_gen_opts go = {.max_new = o->max_new, .stop_ids = stop_ids, .n_stop_ids = n_stop_ids, .stop = stop_strings,
                      .stop_ud = &sc};
    /* every prompt through `batch` sequence slots (continuous batching: nn_generate_stream) */
    int r = 0;
    int32_t **ids = xcalloc((size_t)n + 1, sizeof *ids), **gen = xcalloc((size_t)n + 1, sizeof *gen);
    int *lens = xcalloc((size_t)n + 1, sizeof *lens), *ng = xcalloc((size_t)n + 1, sizeof *ng);
    for (int i = 0; i < n && !r; i++) {
        char *p = o->chat ? nn_chat_wrap(prompts[i]) : xstrdup(prompts[i]);
        r = encode_text(tok, p, &ids[i], &lens[i]);
        free(p);
        if (!r && lens[i] == 0) r = error("prompt %d encodes to no tokens", i);
    }
    if (!r) r = nn_generate_stream(m, (const int32_t *const *)ids, lens, n, batch, &go, gen, ng);
    for (int i = 0; i < n; i++) {
        if (!r) {
            /* drop a final stop token, decode, cut at the first stop string */
            int k = ng[i];
            for (int s = 0; s < n_stop_ids && k > 0; s++)
                if (gen[i][k - 1] == stop_ids[s]) {
                    k--;
                    break;
                }
            char *text;
            size_t len;
            if (nn_tokenizer_decode(tok, gen[i], (size_t)k, &text, &len)) r = -1;
            else {
                for (int s = 0; s < o->n_stop; s++) {
                    char *hit = o->stop[s][0] ? strstr(text, o->stop[s]) : NULL;
                    if (hit) *hit = 0;
                }
                out[i] = text;
            }
        }
        free(ids[i]);
        free(gen[i]);
    }
    free(ids); free(gen); free(lens); free(ng);
    return r ? -1 : 0;
}

/* Python's str.isspace() for one code point (lm-eval's context.rstrip()). */
static int py_isspace(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Length of s without its trailing whitespace (UTF-8; Python's len(s.rstrip()) in bytes). */
static size_t rstrip_len(const char *s)
{
    size_t n = strlen(s);
    while (n) {
        size_t k = n - 1;
        while (k && ((unsigned char)s[k] & 0xC0) == 0x80 && n - k < 4) k--; /* start of the last code point */
        const unsigned char *p = (const unsigned char *)s + k;
        uint32_t c = p[0] < 0x80 ? p[0] : (p[0] >> 5) == 6 ? (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F)
                   : (p[0] >> 4) == 14 ? (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F)
                   : 0xFFFFFFFF;
        if ((p[0] >= 0x80 && n - k < 2) || !py_isspace(c)) break;
        n = k;
    }
    return n;
}

int nn_encode_pair(const nn_tokenizer *tok, const char *ctx, const char *cont, int32_t **ctx_ids, int *n_ctx,
                   int32_t **cont_ids, int *n_cont)
{
    *ctx_ids = *cont_ids = NULL;
    size_t keep = rstrip_len(ctx);
    char *c = xstrfmt("%.*s", (int)keep, ctx), *whole = xstrfmt("%s%s", ctx, cont);
    int32_t *w = NULL;
    int nw = 0, r = encode_text(tok, c, ctx_ids, n_ctx) || encode_text(tok, whole, &w, &nw);
    if (!r && *n_ctx < 1) r = error("the context encodes to no tokens (empty, or only whitespace)");
    if (!r && nw <= *n_ctx) r = error("the continuation encodes to no tokens after the context's");
    if (!r) {
        *n_cont = nw - *n_ctx;
        *cont_ids = xmalloc((size_t)*n_cont * sizeof **cont_ids);
        memcpy(*cont_ids, w + *n_ctx, (size_t)*n_cont * sizeof *w);
    } else {
        free(*ctx_ids);
        *ctx_ids = NULL;
    }
    free(w);
    free(c);
    free(whole);
    return r ? -1 : 0;
}

int nn_textscore(nn_model *m, const nn_tokenizer *tok, const char *const *ctx, const char *const *cont, int n,
                 int batch, int chat, double *logp, int *greedy, int *n_tokens)
{
    int32_t **ci = xcalloc((size_t)n, sizeof *ci), **ki = xcalloc((size_t)n, sizeof *ki);
    int *nc = xcalloc((size_t)n, sizeof *nc), *nk = xcalloc((size_t)n, sizeof *nk), r = 0;
    for (int i = 0; i < n && !r; i++) {
        char *c = chat ? nn_chat_wrap(ctx[i]) : xstrdup(ctx[i]);
        r = nn_encode_pair(tok, c, cont[i], &ci[i], &nc[i], &ki[i], &nk[i]);
        free(c);
        if (r) r = error_prefix("item %d", i);
        if (!r && n_tokens) n_tokens[i] = nk[i];
    }
    if (!r) r = nn_score(m, (const int32_t *const *)ci, nc, (const int32_t *const *)ki, nk, n, batch, logp, greedy, NULL);
    for (int i = 0; i < n; i++) {
        free(ci[i]);
        free(ki[i]);
    }
    free(ci); free(ki); free(nc); free(nk);
    return r;
}
