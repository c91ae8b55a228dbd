/* archive.c - hx export / hx import: the tar.zst layout (member names); export: archive_export.c, import: archive_import.c. */
#include "interp/archive.h"

#include <string.h>

#include "base/base.h"



int hx_archive_safe_relpath(const char *p)
{
    size_t n = strlen(p);
    if (!n || n > 4096 || p[0] == '/') return 0;
    for (const char *c = p; *c;) {
        size_t k = strcspn(c, "/");
        if (k == 0 || k > 255) return 0;
        if ((k == 1 && c[0] == '.') || (k == 2 && c[0] == '.' && c[1] == '.')) return 0;
        for (size_t i = 0; i < k; i++)
            if ((unsigned char)c[i] < 0x20 || c[i] == 0x7f || c[i] == '\\') return 0;
        c += k;
        if (*c == '/' && !*++c) return 0; /* trailing '/' */
    }
    return 1;
}

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
        if (!hx_archive_safe_relpath(r)) return HX_MEMBER_BAD;
        if (rel) *rel = r;
        return strcmp(r, "manifest.json") ? HX_MEMBER_OUTPUT : HX_MEMBER_MANIFEST;
    }
    return HX_MEMBER_BAD;
}
