/* fuzz_archive.c - libFuzzer target: hx import of any bytes (libarchive + zstd, the layout, the verification) into a
 * scratch store that is emptied after every input. Seeds: small exports made by hx. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "interp/archive.h"
#include "interp/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char root[64];
    if (!root[0]) {
        snprintf(root, sizeof root, "/tmp/hx-fuzz-archive-XXXXXX");
        if (!mkdtemp(root)) abort();
        hx_log_set_level(HX_LOG_ERROR);
    }
    char *file = hx_path_join(root, "in.tar.zst"), *dir = hx_path_join(root, "store");
    if (hx_write_file(file, data, size) < 0) abort();
    hx_store s;
    if (hx_store_open(&s, dir) < 0) abort();
    for (int dry = 1; dry >= 0; dry--) { /* the verification alone, then the move into the store */
        json_t *rep = json_object();
        hx_archive_import(&s, file, dry, rep);
        json_decref(rep);
    }
    /* whatever was added must read back as a store */
    json_t *ids = hx_store_list_runs(&s);
    for (size_t i = 0; i < json_array_size(ids); i++) json_decref(hx_store_read_run(&s, json_string_value(json_array_get(ids, i))));
    json_decref(ids);
    hx_store_release(&s);
    hx_rm_rf(dir);
    free(file);
    free(dir);
    return 0;
}
