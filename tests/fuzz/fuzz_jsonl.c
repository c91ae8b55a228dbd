/* fuzz_jsonl.c - libFuzzer target: the JSONL readers on any bytes: benchmark files of `source: jsonl` (MMLU, ARC,
 * HellaSwag styles; world_jsonl_parse) and the eval artifacts read by reports (ev_parse_jsonl). */
#include <stdint.h>
#include <stdlib.h>

#include "base/base.h"
#include "world/world.h"
#include "evalsuite/metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    json_t *items = json_array();
    world_jsonl_parse("fuzz.jsonl", text, size, "fuzz", items);
    json_decref(items);
    json_t *rows = NULL;
    if (ev_parse_jsonl("fuzz.jsonl", text, size, &rows) == 0) json_decref(rows);
    return 0;
}
