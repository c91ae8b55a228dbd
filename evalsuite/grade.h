/* grade.h - grading one benchmark item: its log-likelihoods (lm-eval acc / acc_norm) and its generated reply. */
#ifndef EV_GRADE_H
#define EV_GRADE_H

#include <jansson.h>

#include "evalsuite/extract.h"
#include "evalsuite/prompt.h"

/*
 * Log-likelihood outcome, as lm-eval 0.4.x's multiple_choice process_results computes it:
 *   pred      = argmax_c logp[c]                         (acc: pred == answer)
 *   pred_norm = argmax_c logp[c] / len(choice c)         (acc_norm; len in characters = Unicode code points of what
 *                                                          the continuation asks without its " " delimiter: the
 *                                                          choice text, or for mcq the letter, so pred_norm == pred)
 * argmax ties go to the first (np.argmax). greedy = the answer's continuation is the greedy one (is_greedy).
 * has_norm = 0 for mcq items, whose continuations are letters (lm-eval's MMLU reports acc only).
 */
typedef struct ev_ll_grade {
    int pred, pred_norm, has_norm, greedy;
} ev_ll_grade;
void ev_grade_ll(const ev_item *it, const double *logp, const int *greedy, ev_ll_grade *g);

/* Generation outcome of one reply (docs/eval.md "Answer extraction"). */
typedef struct ev_gen_grade {
    int letter;      /* mcq, cloze: graded as a letter choice */
    int pred;        /* letter formats: the chosen index, or -1 */
    ev_rule rule;    /* letter formats: the rule that fired; open/prose: EV_RULE_AMBIGUOUS for a list of candidates,
                      * else EV_RULE_NONE */
    int correct;     /* letter: pred == answer; open: exact or contains, as `exact_match` asks */
    int em;          /* open: the short answer equals an accepted answer; letter: -1 */
    char *answer;    /* open: the short answer (ev_open_answer), xmalloc'd; letter: NULL */
} ev_gen_grade;
void ev_grade_reply(const ev_item *it, const char *reply, int exact_match, ev_gen_grade *g);
void ev_gen_grade_release(ev_gen_grade *g);

/* A prose reply cut where its sentence ends (ev_prose_end), in place; other formats are left as they are. */
void ev_prose_cut(const ev_item *it, char *reply);

/* Invalid UTF-8 bytes (a byte-level model may stop mid-character) become '?', in place, so the reply is JSON. */
void ev_utf8_repair(char *s);

/* Unicode code points of a UTF-8 string (Python's len). */
int ev_utf8_len(const char *s);

/*
 * The item's line of items.jsonl (docs/eval.md): the item's identity, ll_logp / ll_pred / ll_correct / ll_greedy /
 * ll_norm_*, gen_text / gen_pred, gen_rule (letter formats only: its presence marks a letter item), gen_correct,
 * gen_em, gen_list (open formats, only when true: the reply lists candidates). reply is repaired in place
 * (ev_utf8_repair).
 */
json_t *ev_grade_outcome(const ev_item *it, const double *logp, const int *greedy, char *reply, int exact_match);

#endif
