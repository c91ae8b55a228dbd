/* extract.h - answer extraction from generated text: SQuAD normalisation, MCQ letters, open-answer matching. */
#ifndef EV_EXTRACT_H
#define EV_EXTRACT_H

#include <stddef.h>

/*
 * SQuAD's normalize_answer: lower-case (ASCII), drop ASCII punctuation, drop the articles a/an/the as
 * whole words, collapse whitespace to single spaces, trim. Bytes >= 0x80 are kept as they are. xmalloc'd.
 */
char *ev_normalize(const char *s);

/* How ev_extract_letter found its answer (docs/eval.md "Answer extraction"). */
typedef enum {
    EV_RULE_NONE = 0,   /* nothing found: the item counts as wrong and as invalid */
    EV_RULE_EXPLICIT,   /* "The answer is (B)", "Answer: B" */
    EV_RULE_LEADING,    /* the reply starts with the letter: "B", "B.", "(B)", "B) Paris" */
    EV_RULE_CHOICE,     /* the reply names exactly one choice's text (normalised equal, else contained) */
    EV_RULE_ANYWHERE,   /* the first standalone letter elsewhere in the reply */
    EV_RULE_AMBIGUOUS,  /* two or more different options offered ("C or D", "B, C", "A and B"): no answer, wrong */
} ev_rule;
const char *ev_rule_name(ev_rule r); /* "none", "explicit", "leading", "choice", "anywhere", "ambiguous" */

/*
 * The choice a generated MCQ reply picks: index 0..n_choices-1 (letters A.., n_choices <= 26), or -1.
 * Rules in order (docs/eval.md "Answer extraction"): ambiguous (two different letters offered as alternatives:
 * -1), explicit, leading, choice text (two choices named: ambiguous, -1), anywhere. A capital "A" followed by a
 * space and a lower-case word is the article ("A country in Africa") unless that word cannot start a noun phrase
 * ("A is the answer", "A and B"). rule may be NULL.
 */
int ev_extract_letter(const char *text, const char *const *choices, int n_choices, ev_rule *rule);

/* The short answer of a generated open reply: its first non-empty line, trimmed, with a leading
 * "Answer:" / "A:" / "The answer is" removed. xmalloc'd (may be ""). */
char *ev_open_answer(const char *text);

/*
 * 1 when the short answer of an open reply (ev_open_answer) lists several candidates: with every occurrence of the
 * target and aliases (ASCII case-insensitive, longest first) taken as one word, it splits at ",", ";", "/", "&",
 * " or ", " and ", " nor " into parts of at most 4 words each, at least two of them different, and either a
 * disjunction ("or", "nor", "/") separates them or there are three or more parts: "Paris, London or Berlin",
 * "Paris or London", "Paris, London, Berlin"; not "Paris, France", "Bosnia and Herzegovina" (an answer).
 */
int ev_open_is_list(const char *text, const char *target, const char *const *aliases, int n_aliases);

/*
 * Open-answer correctness against the target and its aliases, after ev_normalize of both sides:
 *   *exact     = the normalised short answer (ev_open_answer) equals one of them;
 *   *contains  = one of them occurs in the normalised whole reply as a whole-word sequence
 *                (the lm-eval / TriviaQA-style lenient match). Empty normalised targets never match.
 * A reply that lists several candidates (ev_open_is_list) is neither: a hedge is not an answer.
 * Returns *contains.
 */
int ev_match_open(const char *text, const char *target, const char *const *aliases, int n_aliases, int *exact,
                  int *contains);

/*
 * Where a greedy prose continuation ends (docs/eval.md "prose"): the length of `text` up to its first
 * newline or its first "." that is not inside an accepted answer written in the text (target or an alias,
 * ASCII case-insensitive), so "St. George's. The capital of ..." ends after "St. George's"; an answer's
 * final "." ends the sentence too ("Washington D.C. It ..." ends before that "."). Answers without a "."
 * make this the plain stop string ".".
 */
size_t ev_prose_end(const char *text, const char *target, const char *const *aliases, int n_aliases);

#endif
