/* chat.c - Qwen3 chat template rendering (see chat.h) and its prompt/completion split, as text and as token ids. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/chat.h"

const char nn_chat_template_jinja[] =
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

static const char THINK_EMPTY[] = "<think>\n\n</think>\n\n";

static int check_msgs(const nn_chat_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *r = msgs[i].role;
        if (!r || (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant")))
            return error("chat: message %zu: role \"%s\" is not system, user or assistant", i, r ? r : "(null)");
        if (!msgs[i].content) return error("chat: message %zu (%s): no content", i, r);
    }
    return 0;
}

/* Appends the turns of msgs[0..n) to a growing buffer; `last_answer` marks a final assistant turn (think block). */
static char *render(const nn_chat_msg *msgs, size_t n, int flags)
{
    size_t total = 64;
    for (size_t i = 0; i < n; i++) total += strlen(msgs[i].role) + strlen(msgs[i].content) + 64;
    char *out = xmalloc(total), *p = out;
    for (size_t i = 0; i < n; i++) {
        int think = (flags & NN_CHAT_EMPTY_THINK) && i + 1 == n && !strcmp(msgs[i].role, "assistant");
        p += sprintf(p, "<|im_start|>%s\n%s%s<|im_end|>\n", msgs[i].role, think ? THINK_EMPTY : "", msgs[i].content);
    }
    if (flags & NN_CHAT_GEN_PROMPT)
        p += sprintf(p, "<|im_start|>assistant\n%s", (flags & NN_CHAT_EMPTY_THINK) ? THINK_EMPTY : "");
    *p = 0;
    return out;
}

char *nn_chat_render(const nn_chat_msg *msgs, size_t n, int flags)
{
    if (check_msgs(msgs, n)) return NULL;
    return render(msgs, n, flags);
}

int nn_chat_split(const nn_chat_msg *msgs, size_t n, int flags, char **prompt, char **completion)
{
    *prompt = *completion = NULL;
    if (check_msgs(msgs, n)) return -1;
    if (n == 0 || strcmp(msgs[n - 1].role, "assistant"))
        return error("chat: the last message must be the assistant's answer to split prompt and completion");
    *prompt = render(msgs, n - 1, flags | NN_CHAT_GEN_PROMPT);
    *completion = xstrfmt("%s<|im_end|>\n", msgs[n - 1].content);
    return 0;
}

int nn_chat_parse(json_t *messages, nn_chat_msg **msgs, size_t *n)
{
    *msgs = NULL;
    *n = 0;
    if (!json_is_array(messages)) return error("chat: messages must be a list of {role, content}");
    size_t count = json_array_size(messages), i;
    nn_chat_msg *m = xcalloc(count ? count : 1, sizeof *m);
    json_t *v;
    json_array_foreach(messages, i, v) {
        m[i].role = json_string_value(json_object_get(v, "role"));
        m[i].content = json_string_value(json_object_get(v, "content"));
        if (!m[i].role || !m[i].content) {
            free(m);
            return error("chat: messages[%zu] needs string \"role\" and \"content\"", i);
        }
    }
    if (check_msgs(m, count)) { free(m); return -1; }
    *msgs = m;
    *n = count;
    return 0;
}

int nn_chat_encode(const nn_tokenizer *t, const nn_chat_msg *msgs, size_t n, int flags, int32_t **ids,
                   size_t *n_ids, size_t *n_prompt)
{
    char *prompt, *completion;
    *ids = NULL;
    if (nn_chat_split(msgs, n, flags, &prompt, &completion)) return -1;
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    int rc = nn_tokenizer_encode(t, prompt, strlen(prompt), &a, &na);
    if (!rc) rc = nn_tokenizer_encode(t, completion, strlen(completion), &b, &nb);
    if (!rc) {
        a = xrealloc(a, (na + nb ? na + nb : 1) * sizeof *a);
        memcpy(a + na, b, nb * sizeof *b);
        *ids = a;
        *n_ids = na + nb;
        *n_prompt = na;
    } else {
        free(a);
    }
    free(b);
    free(prompt);
    free(completion);
    return rc;
}
