/* fuzz_manifest.c - libFuzzer target: a store entry whose manifest.json is any bytes, next to one output file:
 * reading it, the cheap and the full verification, key lookup, and exporting the entry (which re-hashes its
 * outputs). Nothing may crash, read outside the scratch store's regular files or hang. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "interp/archive.h"
#include "interp/store.h"

#define KEY "ab00000000000000000000000000000000000000000000000000000000000001"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char root[64];
    if (!root[0]) {
        snprintf(root, sizeof root, "/tmp/hx-fuzz-manifest-XXXXXX");
        if (!mkdtemp(root)) abort();
        hx_log_set_level(HX_LOG_ERROR);
    }
    char *dir = hx_path_join(root, "store");
    hx_store s;
    if (hx_store_open(&s, dir) < 0) abort();
    char *entry = hx_store_entry_dir(&s, KEY), *mp = hx_path_join(entry, "manifest.json"),
         *out = hx_path_join(entry, "data.txt"), *arch = hx_path_join(root, "out.tar.zst");
    if (hx_mkdir_p(entry) < 0 || hx_write_file(out, "hello:3:1", 9) < 0 || hx_write_file(mp, data, size) < 0) abort();
    json_decref(hx_store_manifest(&s, KEY));
    hx_store_has(&s, KEY);
    free(hx_store_find_key(&s, "ab00"));
    hx_store_verify(&s, KEY, 0);
    hx_store_verify(&s, KEY, 1);
    const char *keys[] = {KEY};
    json_t *rep = json_object();
    hx_archive_export(&s, NULL, 0, keys, 1, 0, NULL, arch, rep);
    json_decref(rep);
    hx_store_release(&s);
    hx_rm_rf(dir);
    unlink(arch);
    free(entry);
    free(mp);
    free(out);
    free(arch);
    free(dir);
    return 0;
}
