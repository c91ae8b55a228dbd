/* grade.c - grading one benchmark item: lm-eval acc / acc_norm from log-likelihoods, and its generated reply. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "evalsuite/grade.h"

int ev_utf8_len(const char *s)
{
    int n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

void ev_grade_ll(const ev_item *it, const double *logp, const int *greedy, ev_ll_grade *g)
{
    int best = 0, bestn = 0;
    double bn = 0;
    for (int c = 0; c < it->n_choices; c++) {
        /* lm-eval divides by len(choice), the continuation without its delimiter: the letter for mcq */
        double vn = logp[c] / (it->format == EV_FMT_MCQ ? 1 : ev_utf8_len(it->choices[c]));
        if (logp[c] > logp[best]) best = c; /* ties: the first (np.argmax) */
        if (c == 0 || vn > bn) bestn = c, bn = vn;
    }
    g->pred = best;
    g->pred_norm = bestn;
    g->has_norm = ev_has_acc_norm(it);
    g->greedy = greedy ? greedy[it->answer] != 0 : 0;
}

void ev_grade_reply(const ev_item *it, const char *reply, int exact_match, ev_gen_grade *g)
{
    memset(g, 0, sizeof *g);
    g->letter = ev_gen_is_letter(it);
    if (g->letter) {
        g->pred = ev_extract_letter(reply, it->choices, it->n_choices, &g->rule);
        g->correct = g->pred >= 0 && g->pred == it->answer;
        g->em = -1;
        return;
    }
    int ex = 0, co = 0;
    g->pred = -1;
    g->rule = ev_open_is_list(reply, it->target, it->aliases, it->n_aliases) ? EV_RULE_AMBIGUOUS : EV_RULE_NONE;
    ev_match_open(reply, it->target, it->aliases, it->n_aliases, &ex, &co);
    g->em = ex;
    g->correct = exact_match ? ex : co;
    g->answer = ev_open_answer(reply);
}

void ev_gen_grade_release(ev_gen_grade *g)
{
    free(g->answer);
    g->answer = NULL;
}

void ev_prose_cut(const ev_item *it, char *reply)
{
    if (it->format == EV_FMT_PROSE) reply[ev_prose_end(reply, it->target, it->aliases, it->n_aliases)] = 0;
}

void ev_utf8_repair(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        int ok = len > 0;
        for (int k = 1; ok && k < len; k++) ok = (p[k] & 0xC0) == 0x80;
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += len;
    }
}

/* A JSON string of text; what jansson still refuses after ev_utf8_repair (overlong forms, surrogates) as ASCII. */
static json_t *text_json(char *text)
{
    json_t *j = json_string(text);
    if (j) return j;
    for (unsigned char *q = (unsigned char *)text; *q; q++)
        if (*q >= 0x80) *q = '?';
    return json_string(text);
}

json_t *ev_grade_outcome(const ev_item *it, const double *logp, const int *greedy, char *reply, int exact_match)
{
    json_t *o = json_pack("{s:s,s:s,s:s?,s:s,s:s,s:i,s:i}", "task", it->task, "doc_id", it->doc_id, "fact_id",
                          it->fact_id, "split", it->split, "format", ev_format_name(it->format), "answer", it->answer,
                          "n_choices", it->n_choices);
    ev_ll_grade l;
    ev_grade_ll(it, logp, greedy, &l);
    json_t *lp = json_array();
    for (int c = 0; c < it->n_choices; c++) json_array_append_new(lp, hx_json_num(logp[c]));
    json_object_set_new(o, "ll_logp", lp);
    json_object_set_new(o, "ll_pred", json_integer(l.pred));
    json_object_set_new(o, "ll_correct", json_boolean(l.pred == it->answer));
    json_object_set_new(o, "ll_greedy", json_boolean(l.greedy));
    if (l.has_norm) {
        json_object_set_new(o, "ll_norm_pred", json_integer(l.pred_norm));
        json_object_set_new(o, "ll_norm_correct", json_boolean(l.pred_norm == it->answer));
    } else {
        json_object_set_new(o, "ll_norm_correct", json_null());
    }
    ev_utf8_repair(reply);
    json_object_set_new(o, "gen_text", text_json(reply));
    ev_gen_grade g;
    ev_grade_reply(it, reply, exact_match, &g);
    if (g.letter) {
        char letter[2] = {(char)('A' + g.pred), 0};
        json_object_set_new(o, "gen_pred", g.pred >= 0 ? json_string(letter) : json_null());
        json_object_set_new(o, "gen_rule", json_string(ev_rule_name(g.rule)));
        json_object_set_new(o, "gen_correct", json_boolean(g.correct));
        json_object_set_new(o, "gen_em", json_null());
    } else {
        json_t *aj = json_string(g.answer);
        json_object_set_new(o, "gen_pred", aj ? aj : json_null());
        json_object_set_new(o, "gen_correct", json_boolean(g.correct));
        json_object_set_new(o, "gen_em", json_boolean(g.em));
        /* only when true (other lines stay as before); not gen_rule: metrics.c takes items with one for letter items */
        if (g.rule == EV_RULE_AMBIGUOUS) json_object_set_new(o, "gen_list", json_true());
    }
    ev_gen_grade_release(&g);
    return o;
}
