/* cmd_exec_key.c - `hx exec-key KEY RUN`: execute exactly one planned instance, read from RUN's record (a Slurm job). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "interp/canon.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "interp/exec.h"
#include "interp/external.h"
#include "interp/slurm.h"

/* SIGTERM (scancel, a time limit, preemption) and SIGINT: the stage stops at a safe point, keeping its
 * checkpoint in partial/<key>/ckpt for the next attempt. */
static volatile int interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Die after leaving the reason where the submitter looks for it (the job's outcome file). */
static HX_NORETURN void fail(const hx_store *s, const char *run_id, const char *key, int status, const char *msg)
{
    hx_exec_result r = {.error = (char *)msg, .store_error = status == HX_EXIT_STORE};
    if (hx_slurm_write_outcome(s, run_id, key, HX_ST_FAILED, &r) < 0) log_warn("%s", hx_last_error());
    die(status, "hx exec-key %.12s: %s", key, msg);
}

/* The stage record of KEY in RUN's "stages", or NULL. */
static json_t *find_stage(json_t *run, const char *key)
{
    json_t *stages = json_object_get(run, "stages");
    for (size_t i = 0; i < json_array_size(stages); i++) {
        json_t *st = json_array_get(stages, i);
        if (!strcmp(json_string_value(json_object_get(st, "key")) ?: "", key)) return st;
    }
    return NULL;
}

int cmd_exec_key(hx_cli *c)
{
    const char *key = c->args[0], *run_id = c->args[1];
    if (strlen(key) != 64 || strspn(key, "0123456789abcdef") != 64)
        die(HX_EXIT_USAGE, "hx exec-key: '%s' is not a store key (64 hex digits)", key);
    hx_store s;
    hx_cli_open_store(c, &s);

    json_t *run = hx_store_read_run(&s, run_id);
    if (!run) fail(&s, run_id, key, HX_EXIT_STORE, hx_last_error());
    json_t *st = find_stage(run, key);
    if (!st) fail(&s, run_id, key, HX_EXIT_USAGE, "the run record has no instance with this key");
    const char *kind_name = json_string_value(json_object_get(st, "kind"));
    const hx_stage_kind *kind = kind_name ? hx_stage_kind_find(kind_name) : NULL;
    char *msg = NULL;
    if (!kind) {
        msg = xstrfmt("this hx has no stage kind '%s' (run the same hx build on every node: docs/cluster.md)",
                      kind_name ? kind_name : "?");
        fail(&s, run_id, key, HX_EXIT_USAGE, msg);
    }
    json_int_t version = json_integer_value(json_object_get(st, "kind_version"));
    if (version != kind->version) {
        msg = xstrfmt("kind %s is version %d here, the run was planned with version %lld (run the same hx build on "
                      "every node: docs/cluster.md)", kind->name, kind->version, (long long)version);
        fail(&s, run_id, key, HX_EXIT_USAGE, msg);
    }

    /* The record is the plan: its instance must hash to KEY here, or this binary would commit something else. */
    json_t *with = json_object_get(st, "with"), *inputs = json_object_get(st, "inputs");
    char *digest = json_is_true(json_object_get(run, "strict")) ? hx_cli_binary_digest() : NULL;
    char again[65];
    json_t *external = json_object_get(st, "external");
    if (hx_canon_key_ext(kind->name, kind->version, with, inputs, external, digest, again) < 0)
        fail(&s, run_id, key, HX_EXIT_USAGE, hx_last_error());
    if (strcmp(again, key)) {
        msg = xstrfmt("the run record's instance hashes to %.12s here, not to its key%s", again,
                      json_is_true(json_object_get(run, "strict")) ? " (--strict: the nodes run another hx binary)" : "");
        fail(&s, run_id, key, HX_EXIT_USAGE, msg);
    }

    /* External inputs: the files must still have the content the plan hashed into the key. */
    const char *field;
    json_t *list;
    json_object_foreach(external, field, list) {
        size_t k;
        json_t *e;
        json_array_foreach(list, k, e) {
            const char *path = json_string_value(json_object_get(e, "path"));
            const char *was = json_string_value(json_object_get(e, "sha256"));
            char hex[65];
            int rc = path ? hx_external_digest(NULL, path, hex) : -1;
            if (rc < 0 || (rc == 1) != !was || (rc == 0 && strcmp(hex, was))) {
                msg = xstrfmt("external input %s (%s) %s since the run was planned: plan and submit again",
                              field, path ? path : "?", rc < 0 ? "cannot be read" : "changed");
                fail(&s, run_id, key, HX_EXIT_USAGE, msg);
            }
        }
    }

    hx_instance in = {
        .stage_name = json_string_value(json_object_get(st, "stage")),
        .kind = kind,
        .axes = json_object_get(st, "axes"),
        .with = with,
        .run_with = json_object_get(st, "run_with"),
        .external = external,
        .inputs = inputs,
        .n_inputs = (int)json_object_size(inputs),
    };
    snprintf(in.key, sizeof in.key, "%s", key);
    in.roles = xcalloc((size_t)in.n_inputs + 1, sizeof *in.roles);
    const char **input_keys = xcalloc((size_t)in.n_inputs + 1, sizeof *input_keys);
    const char *role;
    json_t *v;
    int n = 0;
    json_object_foreach(inputs, role, v) {
        in.roles[n] = role;
        input_keys[n] = json_string_value(v);
        if (!input_keys[n] || !hx_store_has(&s, input_keys[n])) {
            msg = xstrfmt("input '%s' (key %.12s) is not in the store: the job that makes it did not commit",
                          role, input_keys[n] ? input_keys[n] : "?");
            fail(&s, run_id, key, HX_EXIT_STORE, msg);
        }
        n++;
    }

    /* --device: cpu, or cuda (the first GPU Slurm gave this job: it sets CUDA_VISIBLE_DEVICES) */
    const char *device = !strcmp(c->device, "cuda") || !strcmp(c->device, "auto") ? "cuda:0" : c->device;
    if (!strcmp(c->device, "auto") && !getenv("CUDA_VISIBLE_DEVICES")) device = "cpu";
    if (strcmp(device, "cpu") && strncmp(device, "cuda:", 5))
        die(HX_EXIT_USAGE, "hx exec-key: --device %s: expected cpu, cuda or cuda:N", c->device);

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    hx_exec_opts o = {.jobs = 1, .threads = c->threads ? c->threads : 1, .verify = c->verify,
                      .interrupted = &interrupted, .run_id = run_id, .binary_digest = digest};
    hx_exec_result r = {0};
    int state = hx_exec_one(&s, &o, &in, input_keys, device, 0, &r);
    free(digest);
    if (state == HX_ST_CACHED) log_info("%s: already in the store (key %.12s): nothing to do", in.stage_name, key);
    if (hx_slurm_write_outcome(&s, run_id, key, state, &r) < 0) log_warn("%s", hx_last_error());
    int rc = state != HX_ST_FAILED ? HX_EXIT_OK : interrupted ? HX_EXIT_INTERRUPTED : r.store_error ? HX_EXIT_STORE : HX_EXIT_STAGE;
    free(r.error);
    free(msg);
    free(in.roles);
    free(input_keys);
    json_decref(run);
    hx_store_release(&s);
    return rc;
}
