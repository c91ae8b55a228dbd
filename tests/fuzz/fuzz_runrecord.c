/* fuzz_runrecord.c - libFuzzer target: a run record (runs/<id>/run.json) that is any bytes, read the ways hx reads
 * records: by id and as latest, listed, as plan/why history, as a report (md and json) and a diff against
 * itself, and by a dry-run gc. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "interp/runsrc.h"
#include "interp/store.h"
#include "reports/report.h"

#define RUN_ID "20260101-000000-00001"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char root[64];
    if (!root[0]) {
        snprintf(root, sizeof root, "/tmp/hx-fuzz-runrecord-XXXXXX");
        if (!mkdtemp(root)) abort();
        hx_log_set_level(HX_LOG_ERROR);
    }
    char *dir = hx_path_join(root, "store");
    hx_store s;
    if (hx_store_open(&s, dir) < 0) abort();
    if (hx_store_add_run(&s, RUN_ID, (const char *)data, size) == 0) {
        json_t *run = hx_store_read_run(&s, "latest");
        json_decref(hx_store_list_runs(&s));
        json_t *name = json_object_get(json_object_get(run, "recipe"), "name");
        json_decref(hx_store_history(&s, json_is_string(name) ? json_string_value(name) : "fuzz", 3));
        if (run) {
            rp_source src = hx_runsrc_source(&s);
            json_t *rep = rp_report_build(run, &src);
            if (rep) {
                const char *formats[] = {"md", "json", "tex", "html"};
                for (int i = 0; i < 4; i++) {
                    char *text = NULL;
                    if (rp_render(rep, formats[i], &text) == 0) free(text);
                }
                json_decref(rep);
            }
            json_t *d = rp_diff(run, run, &src, 1);
            if (d) {
                free(rp_diff_text(d, 5));
                json_decref(d);
            }
            json_decref(run);
        }
        json_t *gc = json_object();
        hx_store_gc(&s, 1, 1, gc);
        json_decref(gc);
    }
    hx_store_release(&s);
    hx_rm_rf(dir);
    free(dir);
    return 0;
}
