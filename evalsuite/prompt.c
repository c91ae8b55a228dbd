/* prompt.c - benchmark items (parsing, checks) and their prompts: lm-eval-style LL contexts, chat generation prompts. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/chat.h"
#include "evalsuite/prompt.h"

const char *ev_format_name(ev_format f)
{
    return f == EV_FMT_MCQ ? "mcq" : f == EV_FMT_OPEN ? "open" : f == EV_FMT_CLOZE ? "cloze" : "prose";
}

static const char *str_field(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

int ev_item_parse(json_t *o, const char *where, ev_item *it)
{
    memset(it, 0, sizeof *it);
    if (!json_is_object(o)) return error("%s: a benchmark item must be a JSON object", where);
    it->task = str_field(o, "task");
    it->doc_id = str_field(o, "doc_id");
    it->fact_id = str_field(o, "fact_id"); /* null for JSONL sources */
    it->split = str_field(o, "split");
    it->question = str_field(o, "question");
    it->target = str_field(o, "target");
    const char *fmt = str_field(o, "format");
    static const char *need[] = {"task", "doc_id", "question"};
    const char *have[] = {it->task, it->doc_id, it->question};
    for (int i = 0; i < 3; i++)
        if (!have[i]) return error("%s: item needs a string \"%s\"", where, need[i]);
    if (!it->split) it->split = "eval";
    if (!fmt || !strcmp(fmt, "mcq")) it->format = EV_FMT_MCQ;
    else if (!strcmp(fmt, "open")) it->format = EV_FMT_OPEN;
    else if (!strcmp(fmt, "cloze")) it->format = EV_FMT_CLOZE;
    else if (!strcmp(fmt, "prose")) it->format = EV_FMT_PROSE;
    else return error("%s: item %s: unknown format '%s' (mcq, open, cloze or prose)", where, it->doc_id, fmt);
    json_t *ch = json_object_get(o, "choices");
    size_t n = json_array_size(ch);
    if (!json_is_array(ch) || n < 2 || n > 26)
        return error("%s: item %s: \"choices\" must be a list of 2 to 26 strings", where, it->doc_id);
    it->n_choices = (int)n;
    for (size_t i = 0; i < n; i++) {
        it->choices[i] = json_string_value(json_array_get(ch, i));
        if (!it->choices[i] || !it->choices[i][0])
            return error("%s: item %s: choices[%zu] is not a non-empty string", where, it->doc_id, i);
    }
    json_t *a = json_object_get(o, "answer");
    if (!json_is_integer(a) || json_integer_value(a) < 0 || json_integer_value(a) >= (json_int_t)n)
        return error("%s: item %s: \"answer\" must be an index into choices (0..%zu)", where, it->doc_id, n - 1);
    it->answer = (int)json_integer_value(a);
    if (!it->target) it->target = it->choices[it->answer];
    json_t *al = json_object_get(o, "aliases");
    if (al && !json_is_null(al)) {
        if (!json_is_array(al)) return error("%s: item %s: \"aliases\" must be a list of strings", where, it->doc_id);
        it->aliases = xcalloc(json_array_size(al) + 1, sizeof *it->aliases);
        for (size_t i = 0; i < json_array_size(al); i++) {
            const char *s = json_string_value(json_array_get(al, i));
            if (!s) {
                ev_item_release(it);
                return error("%s: item %s: aliases[%zu] is not a string", where, it->doc_id, i);
            }
            it->aliases[it->n_aliases++] = s;
        }
    }
    return 0;
}

void ev_item_release(ev_item *it)
{
    free(it->aliases);
    it->aliases = NULL;
    it->n_aliases = 0;
}

int ev_has_acc_norm(const ev_item *it) { return it->format != EV_FMT_MCQ; }
int ev_gen_is_letter(const ev_item *it) { return it->format == EV_FMT_MCQ || it->format == EV_FMT_CLOZE; }
int ev_uses_chat(const ev_item *it, int chat) { return chat && it->format != EV_FMT_PROSE; }

/* Appends one rendered item (without its answer) to a growing string. */
static char *cat(char *s, const char *add)
{
    size_t a = s ? strlen(s) : 0, b = strlen(add);
    s = xrealloc(s, a + b + 1);
    memcpy(s + a, add, b + 1);
    return s;
}

static char *options(char *s, const ev_item *it)
{
    for (int c = 0; c < it->n_choices; c++) {
        char *line = xstrfmt("\n%c. %s", 'A' + c, it->choices[c]);
        s = cat(s, line);
        free(line);
    }
    return s;
}

static char *ll_body(char *s, const ev_item *it)
{
    if (it->format == EV_FMT_CLOZE || it->format == EV_FMT_PROSE) return cat(s, it->question);
    s = cat(s, "Question: ");
    s = cat(s, it->question);
    if (it->format == EV_FMT_MCQ) s = options(s, it);
    return cat(s, "\nAnswer:");
}

char *ev_ll_continuation(const ev_item *it, int choice)
{
    if (it->format == EV_FMT_MCQ) return xstrfmt(" %c", 'A' + choice);
    return xstrfmt(" %s", it->choices[choice]);
}

char *ev_ll_context(const ev_item *it, const ev_item *const *shots, int n_shots)
{
    char *s = xstrdup("");
    for (int k = 0; k < n_shots; k++) {
        s = ll_body(s, shots[k]);
        char *ans = ev_ll_continuation(shots[k], shots[k]->answer);
        s = cat(s, ans);
        /* prose shots end as sentences ("... is Vientiane. "), unless the answer already does ("D.C.") */
        if (it->format == EV_FMT_PROSE) s = cat(s, ans[strlen(ans) - 1] == '.' ? " " : ". ");
        else s = cat(s, "\n\n");
        free(ans);
    }
    return ll_body(s, it);
}

static char *gen_user(const ev_item *it)
{
    if (it->format == EV_FMT_OPEN) return xstrfmt("%s Answer in a few words.", it->question);
    char *s = it->format == EV_FMT_CLOZE ? xstrfmt("Which sentence comes next?\n\n%s", it->question) : xstrdup(it->question);
    s = options(s, it);
    return cat(s, "\nAnswer with the letter of the correct option.");
}

char *ev_gen_answer(const ev_item *it)
{
    return ev_gen_is_letter(it) ? xstrfmt("%c", 'A' + it->answer) : xstrdup(it->target);
}

char *ev_gen_prompt(const ev_item *it, const ev_item *const *shots, int n_shots, int chat)
{
    if (!ev_uses_chat(it, chat)) return ev_ll_context(it, shots, n_shots);
    int n = 2 * n_shots + 1;
    int flags = NN_CHAT_GEN_PROMPT | ((chat & EV_CHAT_NO_THINK) ? NN_CHAT_EMPTY_THINK : 0);
    nn_chat_msg *m = xcalloc((size_t)n, sizeof *m);
    char **own = xcalloc((size_t)n, sizeof *own);
    for (int k = 0; k < n_shots; k++) {
        own[2 * k] = gen_user(shots[k]);
        own[2 * k + 1] = ev_gen_answer(shots[k]);
        m[2 * k] = (nn_chat_msg){"user", own[2 * k]};
        m[2 * k + 1] = (nn_chat_msg){"assistant", own[2 * k + 1]};
    }
    own[n - 1] = gen_user(it);
    m[n - 1] = (nn_chat_msg){"user", own[n - 1]};
    char *s = nn_chat_render(m, (size_t)n, flags);
    for (int i = 0; i < n; i++) free(own[i]);
    free(own);
    free(m);
    return s;
}

char *ev_ll_prompt(const ev_item *it, const ev_item *const *shots, int n_shots, int chat)
{
    char *ctx = ev_ll_context(it, shots, n_shots);
    if (!ev_uses_chat(it, chat)) return ctx;
    nn_chat_msg m = {"user", ctx};
    char *s = nn_chat_render(&m, 1, NN_CHAT_GEN_PROMPT | ((chat & EV_CHAT_NO_THINK) ? NN_CHAT_EMPTY_THINK : 0));
    free(ctx);
    return s;
}

char *ev_ll_target(const ev_item *it, int choice, int chat)
{
    char *t = ev_ll_continuation(it, choice);
    if (ev_uses_chat(it, chat)) memmove(t, t + 1, strlen(t)); /* drop the " " delimiter */
    return t;
}

static uint64_t doc_seed(uint64_t seed, const char *doc)
{
    return hx_fnv1a(HX_FNV1A_INIT ^ (seed * 0x9e3779b97f4a7c15ull), doc, strlen(doc));
}

int ev_pick_shots(const ev_item *all, int n_all, const ev_item *it, int k, uint64_t seed, const ev_item **out)
{
    int *cand = xmalloc((size_t)(n_all ? n_all : 1) * sizeof *cand), nc = 0;
    for (int j = 0; j < n_all; j++) {
        const ev_item *o = &all[j];
        if (strcmp(o->task, it->task) || !strcmp(o->doc_id, it->doc_id)) continue;
        if (it->fact_id && o->fact_id && !strcmp(o->fact_id, it->fact_id)) continue;
        cand[nc++] = j;
    }
    hx_rng r;
    hx_rng_seed(&r, doc_seed(seed, it->doc_id));
    int got = 0;
    for (; got < k && got < nc; got++) {
        int p = got + (int)hx_rng_below(&r, (uint64_t)(nc - got));
        int t = cand[got];
        cand[got] = cand[p];
        cand[p] = t;
        out[got] = &all[cand[got]];
    }
    free(cand);
    return got;
}
