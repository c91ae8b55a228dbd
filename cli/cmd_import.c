/* cmd_import.c - `hx import FILE.tar.zst`: verify an export's digests and add its entries and runs to the store. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/base.h"
#include "interp/archive.h"
#include "cli/cli.h"
#include "cli/commands.h"

static void print_rows(const json_t *rows, const char *what)
{
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        const char *stage = json_string_value(json_object_get(r, "stage"));
        json_t *b = json_object_get(r, "bytes"); /* entries with outputs: their unpacked size */
        printf("%-12s %.12s  %-16s", what, json_string_value(json_object_get(r, "key")), stage ? stage : "");
        if (b) printf(" %10.1f KiB", json_integer_value(b) / 1024.0);
        printf("\n");
    }
}

int cmd_import(hx_cli *c)
{
    const char *file = c->args[0];
    if (access(file, R_OK) < 0) die(HX_EXIT_USAGE, "hx import: cannot read '%s'", file);
    hx_store s;
    hx_cli_open_store(c, &s);
    json_t *rep = json_object();
    if (hx_archive_import(&s, file, c->dry_run, rep) < 0)
        die(HX_EXIT_STORE, "hx import: %s\nhint: nothing that failed verification was added; the store is consistent",
            hx_last_error());
    json_t *added = json_object_get(rep, "added"), *present = json_object_get(rep, "present"),
           *prov = json_object_get(rep, "provenance");
    size_t ra = json_array_size(json_object_get(rep, "runs_added")),
           rp = json_array_size(json_object_get(rep, "runs_present"));
    if (c->json) {
        char *t = json_dumps(rep, JSON_COMPACT);
        printf("%s\n", t);
        free(t);
    } else {
        print_rows(added, c->dry_run ? "would add" : "added");
        print_rows(present, "present");
        print_rows(prov, "manifest");
        size_t i;
        json_t *id;
        json_array_foreach(json_object_get(rep, "runs_added"), i, id)
            printf("%-10s %s\n", c->dry_run ? "would add" : "run", json_string_value(id));
        json_array_foreach(json_object_get(rep, "runs_present"), i, id) printf("%-10s %s (already there)\n", "run", json_string_value(id));
        printf("%s%zu entr%s %s (%.1f KiB unpacked), %zu already present (%.1f KiB), %zu provenance manifest%s verified "
               "but not added; %zu run%s %s, %zu already present\n",
               c->dry_run ? "(dry run) " : "", json_array_size(added), json_array_size(added) == 1 ? "y" : "ies",
               c->dry_run ? "to add" : "added", json_integer_value(json_object_get(rep, "bytes")) / 1024.0,
               json_array_size(present), json_integer_value(json_object_get(rep, "bytes_present")) / 1024.0,
               json_array_size(prov), json_array_size(prov) == 1 ? "" : "s", ra, ra == 1 ? "" : "s",
               c->dry_run ? "to add" : "added", rp);
    }
    json_decref(rep);
    hx_store_release(&s);
    return 0;
}
