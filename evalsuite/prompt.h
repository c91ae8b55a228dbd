/* prompt.h - benchmark items and the prompts that ask them: log-likelihood contexts/continuations, generation prompts. */
#ifndef EV_PROMPT_H
#define EV_PROMPT_H

#include <jansson.h>
#include <stdint.h>

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
 * How prompts meet the chat template: EV_CHAT asks in Qwen3's chat template (the instruction data's form);
 * EV_CHAT_NO_THINK adds the empty "<think>\n\n</think>\n\n" block after the generation prompt, the template of a
 * real Qwen3 rendered with enable_thinking=false (nn/chat.h NN_CHAT_EMPTY_THINK). `chat` arguments below
 * take these flags (1 = EV_CHAT, as before).
 */
enum { EV_CHAT = 1, EV_CHAT_NO_THINK = 2 };

/*
 * The log-likelihood request as scored: the context (ev_ll_context), wrapped as one user turn with the generation
 * prompt when ev_uses_chat(it, chat) (lm-eval's --apply_chat_template), and the continuation of `choice`, whose
 * " " delimiter is dropped when the context is wrapped (lm-eval sets target_delimiter "" with a chat template, as
 * the instruction data's replies follow "assistant\n" directly). xmalloc'd; NULL + error() from the template.
 */
char *ev_ll_prompt(const ev_item *it, const ev_item *const *shots, int n_shots, int chat);
char *ev_ll_target(const ev_item *it, int choice, int chat);

/*
 * k shots for an item: other items of its task with another doc (and another fact, where both have one), drawn
 * without replacement from a generator seeded by (seed, doc_id), so an item's shots depend neither on `limit` nor on
 * other items. Returns how many (<= k; fewer when the task is small). out[] points into all[].
 */
int ev_pick_shots(const ev_item *all, int n_all, const ev_item *it, int k, uint64_t seed, const ev_item **out);

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
