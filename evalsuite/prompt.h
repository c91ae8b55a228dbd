/* prompt.h - benchmark items and the prompts that ask them: log-likelihood contexts/continuations, generation prompts. */
#ifndef EV_PROMPT_H
#define EV_PROMPT_H

#include <jansson.h>

typedef enum { EV_FMT_MCQ, EV_FMT_OPEN, EV_FMT_CLOZE, EV_FMT_PROSE } ev_format;

/* One benchmark item (docs/data.md "bench/<task>.jsonl"); strings are borrowed from the JSON object. */
typedef struct ev_item {
    const char *task, *doc_id, *fact_id, *split, *question, *target;
    ev_format format;
    int n_choices;
    const char *choices[26];
    int answer;                  /* index into choices */
    int n_aliases;
    const char **aliases;        /* xmalloc'd array (ev_item_release) */
} ev_item;

/* Checks and reads one item (where = "file:line" for messages). 0, or error naming where and the field. */
int ev_item_parse(json_t *o, const char *where, ev_item *it);
void ev_item_release(ev_item *it);
const char *ev_format_name(ev_format f); /* "mcq", "open", "cloze", "prose" */

/*
 * Log-likelihood scoring (lm-eval conventions, docs/eval.md):
 *   mcq:   "Question: {q}\nA. {c0}\nB. {c1}\n...\nAnswer:"  continuations " A", " B", ...
 *   open:  "Question: {q}\nAnswer:"                          continuations " {choice}"
 *   cloze: "{q}"                                             continuations " {choice}"
 *   prose: "{q}" (a prose prefix: "The capital of Laos is")  continuations " {choice}"
 * Shots come first, each the same rendering followed by its answer and a blank line; prose shots are
 * finished sentences before the question in one paragraph, as facts appear in the corpus:
 * "{q1} {a1}. {q2} {a2}. {q}". xmalloc'd.
 */
char *ev_ll_context(const ev_item *it, const ev_item *const *shots, int n_shots);
char *ev_ll_continuation(const ev_item *it, int choice);
/* 1 when acc_norm (log-likelihood divided by the continuation's length in characters) is meaningful:
 * continuations are choice texts (open, cloze, prose), not single letters (mcq). */
int ev_has_acc_norm(const ev_item *it);

/*
 * The generation prompt. chat = 1: the user turn of the instruction data (docs/data.md), shots as earlier
 * user/assistant turns, rendered with Qwen3's chat template and its generation prompt:
 *   mcq / cloze: "{q}\nA. {c0}\n...\nAnswer with the letter of the correct option."  (answer: the letter)
 *   open:        "{q} Answer in a few words."                                        (answer: the target)
 * (cloze puts "Which sentence comes next?\n\n{passage}" as the question.) chat = 0: the log-likelihood
 * context (lm-eval's generate_until over the same prompt). prose items are a prefix to continue, never a
 * question: their prompt is the log-likelihood context whatever `chat` says. xmalloc'd, NULL + error().
 */
char *ev_gen_prompt(const ev_item *it, const ev_item *const *shots, int n_shots, int chat);
/* The reference reply of an item in a generation shot: the letter (mcq, cloze) or the target (open, prose). */
char *ev_gen_answer(const ev_item *it);
/* Generation is scored as a letter choice (mcq, cloze) rather than as a free answer (open, prose). */
int ev_gen_is_letter(const ev_item *it);
/* The item is asked in the chat template: generation when chat = 1, log-likelihood when ll_chat = 1;
 * never for prose (a raw prefix). */
int ev_uses_chat(const ev_item *it, int chat);

#endif
