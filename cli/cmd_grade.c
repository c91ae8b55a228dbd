/* cmd_grade.c - `hx grade`: the eval stage's answer grader on replies given by hand, for debugging prompts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "evalsuite/grade.h"

/* What to grade against: the command line's settings, overridden per line by --json-lines objects. */
typedef struct grade_spec {
    const char *format;
    int n_choices;
    const char *options[26];
    int n_options;
    const char *target;
    const char *aliases[64];
    int n_aliases;
    int exact;
} grade_spec;

/* The item the spec describes; 0, or an error message naming what is missing. */
static int spec_item(const grade_spec *s, ev_item *it)
{
    memset(it, 0, sizeof *it);
    it->task = it->doc_id = "grade";
    it->split = "eval";
    it->answer = -1;
    if (!strcmp(s->format, "mcq")) it->format = EV_FMT_MCQ;
    else if (!strcmp(s->format, "cloze")) it->format = EV_FMT_CLOZE;
    else if (!strcmp(s->format, "open")) it->format = EV_FMT_OPEN;
    else if (!strcmp(s->format, "prose")) it->format = EV_FMT_PROSE;
    else return error("unknown format '%s' (mcq, cloze, open or prose)", s->format);
    if (ev_gen_is_letter(it)) {
        int n = s->n_options ? s->n_options : s->n_choices;
        if (s->n_options && s->n_choices && s->n_choices != s->n_options)
            return error("--choices %d but %d --option texts", s->n_choices, s->n_options);
        if (n < 1 || n > 26) return error("%s needs --choices N (1..26) or --option texts", s->format);
        it->n_choices = n;
        for (int i = 0; i < s->n_options; i++) it->choices[i] = s->options[i];
        return 0;
    }
    if (!s->target) return error("%s needs --target T (the accepted answer)", s->format);
    it->target = s->target;
    it->aliases = (const char **)s->aliases;
    it->n_aliases = s->n_aliases;
    return 0;
}

/* The JSON verdict of one reply (reply is modified: repaired, and cut for prose). */
static json_t *grade_one(const ev_item *it, char *reply, int exact)
{
    ev_utf8_repair(reply);
    ev_prose_cut(it, reply);
    ev_gen_grade g;
    ev_grade_reply(it, reply, exact, &g);
    json_t *o;
    if (g.letter) {
        char letter[2] = {(char)('A' + g.pred), 0};
        o = json_pack("{s:o,s:s}", "pred", g.pred >= 0 ? json_string(letter) : json_null(), "rule", ev_rule_name(g.rule));
    } else {
        json_t *p = json_string(g.answer);
        o = json_pack("{s:b,s:b,s:o}", "correct", g.correct, "em", g.em, "pred", p ? p : json_null());
    }
    ev_gen_grade_release(&g);
    return o;
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf("%s\n", s);
    free(s);
    json_decref(o);
}

/* One --json-lines line: a JSON string, or an object with "reply" and overrides. 0, or error naming where. */
static int grade_line(const grade_spec *base, const char *where, const char *line)
{
    json_error_t je;
    json_t *j = json_loads(line, JSON_DECODE_ANY, &je);
    if (!j) return error("%s:%d: invalid JSON: %s", where, je.column, je.text);
    grade_spec s = *base;
    json_t *r = json_is_string(j) ? j : json_object_get(j, "reply");
    int rc = 0;
    if (!json_is_string(r)) rc = error("%s: expected a JSON string or an object with a string \"reply\"", where);
    json_t *v;
    if (!rc && json_is_object(j)) {
        if ((v = json_object_get(j, "format")) && !(s.format = json_string_value(v)))
            rc = error("%s: \"format\" must be a string", where);
        if (!rc && (v = json_object_get(j, "target")) && !(s.target = json_string_value(v)))
            rc = error("%s: \"target\" must be a string", where);
        if (!rc && (v = json_object_get(j, "choices"))) {
            s.n_options = 0;
            if (json_is_integer(v)) s.n_choices = (int)json_integer_value(v);
            else if (json_is_array(v) && json_array_size(v) <= 26) {
                s.n_choices = 0;
                for (size_t i = 0; i < json_array_size(v) && !rc; i++)
                    if (!(s.options[s.n_options++] = json_string_value(json_array_get(v, i))))
                        rc = error("%s: choices[%zu] is not a string", where, i);
            } else rc = error("%s: \"choices\" must be a count or a list of at most 26 texts", where);
        }
        if (!rc && (v = json_object_get(j, "aliases"))) {
            s.n_aliases = 0;
            if (!json_is_array(v) || json_array_size(v) > 64) rc = error("%s: \"aliases\" must be a list of strings", where);
            for (size_t i = 0; !rc && i < json_array_size(v); i++)
                if (!(s.aliases[s.n_aliases++] = json_string_value(json_array_get(v, i))))
                    rc = error("%s: aliases[%zu] is not a string", where, i);
        }
    }
    ev_item it;
    if (!rc && spec_item(&s, &it)) rc = error_prefix("%s", where);
    if (!rc) {
        char *reply = xstrdup(json_string_value(r));
        print_json(grade_one(&it, reply, s.exact));
        free(reply);
    }
    json_decref(j);
    return rc;
}

static int grade_file(const grade_spec *s, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    if (!strcmp(path, "-")) {
        size_t cap = 4096;
        buf = xmalloc(cap);
        for (size_t got; (got = fread(buf + len, 1, cap - len - 1, stdin)) > 0;) {
            len += got;
            if (cap - len < 2) buf = xrealloc(buf, cap *= 2);
        }
        buf[len] = 0;
    } else if (hx_read_file(path, &buf, &len)) {
        return -1;
    }
    int rc = 0, lineno = 0;
    for (char *p = buf, *nl; !rc && p < buf + len; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) nl = buf + len;
        *nl = 0;
        lineno++;
        if (strspn(p, " \t\r") == strlen(p)) continue;
        char *where = xstrfmt("%s:%d", strcmp(path, "-") ? path : "(stdin)", lineno);
        rc = grade_line(s, where, p);
        free(where);
    }
    fflush(stdout);
    free(buf);
    return rc;
}

int cmd_grade(hx_cli *c)
{
    grade_spec s = {.format = hx_cli_str(c, "format"), .n_choices = hx_cli_int(c, "choices", 0),
                    .target = hx_cli_str(c, "target"), .exact = !strcmp(hx_cli_str(c, "match"), "exact")};
    const char *reply = c->n_args ? c->args[0] : NULL, *lines = hx_cli_str(c, "json-lines");
    int n;
    const char **v = hx_cli_list(c, "option", &n);
    if (n > 26) die(HX_EXIT_USAGE, "hx grade: at most 26 --option texts");
    memcpy(s.options, v, (size_t)n * sizeof *v);
    s.n_options = n;
    free(v);
    v = hx_cli_list(c, "alias", &n);
    if (n > 64) die(HX_EXIT_USAGE, "hx grade: at most 64 --alias values");
    memcpy(s.aliases, v, (size_t)n * sizeof *v);
    s.n_aliases = n;
    free(v);
    char *usage = hx_help_usage(c->cmd, c->name);
    if (!!reply == !!lines) die(HX_EXIT_USAGE, "hx grade: give one REPLY or --json-lines FILE\n%s", usage);
    if (lines) {
        if (grade_file(&s, lines)) die(HX_EXIT_USAGE, "%s", hx_last_error());
        free(usage);
        return 0;
    }
    ev_item it;
    if (spec_item(&s, &it)) die(HX_EXIT_USAGE, "hx grade: %s\n%s", hx_last_error(), usage);
    char *r = xstrdup(reply);
    print_json(grade_one(&it, r, s.exact));
    free(r);
    free(usage);
    return 0;
}
