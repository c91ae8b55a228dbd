/* chat.h - Qwen3's chat template (non-thinking form): messages -> text, and the prompt/completion boundary. */
#ifndef NN_CHAT_H
#define NN_CHAT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "nn/tokenizer.h"

typedef struct nn_chat_msg {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content;
} nn_chat_msg;

enum {
    NN_CHAT_GEN_PROMPT = 1,  /* append the generation prompt "<|im_start|>assistant\n" */
    NN_CHAT_EMPTY_THINK = 2, /* Qwen3's template verbatim: the generation prompt (enable_thinking=false) and a final
                                assistant turn carry an empty "<think>\n\n</think>\n\n" block */
};

/* nn_chat_render(msgs, n, flags & NN_CHAT_GEN_PROMPT) as a Jinja chat template (transformers' apply_chat_template with
 * add_generation_prompt), written into every checkpoint's tokenizer_config.json. */
extern const char nn_chat_template_jinja[];

/*
 * Renders "<|im_start|>{role}\n{content}<|im_end|>\n" per message, then the generation prompt if asked.
 * xmalloc'd; NULL + error() on an unknown role or a NULL content (message index in the message).
 */
char *nn_chat_render(const nn_chat_msg *msgs, size_t n, int flags);

/*
 * The last message must be the assistant's answer: prompt = render(msgs[0..n-1]) + generation prompt,
 * completion = "{content}<|im_end|>\n", so prompt + completion == the rendered conversation. The answer
 * proper ends where "<|im_end|>" starts (strlen(content)). Both xmalloc'd.
 */
int nn_chat_split(const nn_chat_msg *msgs, size_t n, int flags, char **prompt, char **completion);

/* Messages of a JSON list [{"role": ..., "content": ...}]; strings are borrowed from `messages`. */
int nn_chat_parse(json_t *messages, nn_chat_msg **msgs, size_t *n);

/*
 * Token ids of prompt then completion, each encoded on its own (the boundary is a token boundary, and the
 * prompt's ids are what generation sees). *n_prompt = number of prompt ids: a completion-only loss mask is
 * positions >= *n_prompt. *ids xmalloc'd.
 */
int nn_chat_encode(const nn_tokenizer *t, const nn_chat_msg *msgs, size_t n, int flags, int32_t **ids,
                   size_t *n_ids, size_t *n_prompt);

#endif
