/* archive.c - hx export / hx import: the tar.zst layout (member names); export: archive_export.c, import: archive_import.c. */
#include "interp/archive.h"

#include <string.h>

#include "base/base.h"

hx_member_kind hx_archive_member(const char *name, char key[65], char id[32], const char **rel)
{
    if (!strcmp(name, HX_ARCHIVE_INDEX)) return HX_MEMBER_INDEX;
    if (!strncmp(name, "runs/", 5)) {
        const char *p = name + 5, *slash = strchr(p, '/');
        if (!slash || slash - p != 21 || strcmp(slash, "/run.json")) return HX_MEMBER_BAD;
        memcpy(id, p, 21);
        id[21] = 0;
        return hx_store_is_run_id(id) ? HX_MEMBER_RUN : HX_MEMBER_BAD;
    }
    if (!strncmp(name, "store/", 6)) {
        const char *p = name + 6; /* xx/<64 hex>/rel */
        if (strlen(p) < 69 || p[2] != '/' || p[67] != '/') return HX_MEMBER_BAD;
        memcpy(key, p + 3, 64);
        key[64] = 0;
        if (!hx_store_is_key(key) || strncmp(p, key, 2)) return HX_MEMBER_BAD;
        const char *r = p + 68;
        if (!hx_store_rel_ok(r)) return HX_MEMBER_BAD;
        if (rel) *rel = r;
        return strcmp(r, "manifest.json") ? HX_MEMBER_OUTPUT : HX_MEMBER_MANIFEST;
    }
    return HX_MEMBER_BAD;
}
