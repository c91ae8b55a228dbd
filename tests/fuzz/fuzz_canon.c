/* fuzz_canon.c - libFuzzer target: canonical JSON is a fixed point and keys do not depend on spelling. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "interp/canon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t e;
    json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY, &e);
    if (!v) return 0;
    char *a = hx_canon_dump(v);
    if (a) {
        /* Canonical text parses back to a value whose canonical text is the same. */
        json_t *w = json_loads(a, JSON_DECODE_ANY, &e);
        if (!w) BUG("canonical text does not parse: %s (%s)", a, e.text);
        char *b = hx_canon_dump(w);
        if (!b || strcmp(a, b)) BUG("canonical text is not a fixed point:\n%s\n%s", a, b ? b : "(null)");
        /* Keys of the value and of its normalised, re-parsed twin agree. */
        json_t *nv = hx_canon_normalize(v);
        char k1[65], k2[65];
        int r1 = hx_canon_key("k", 1, v, NULL, NULL, k1), r2 = hx_canon_key("k", 1, nv, NULL, NULL, k2);
        if (r1 != r2 || (r1 == 0 && strcmp(k1, k2))) BUG("normalising changed a key");
        if (json_is_object(w)) {
            char k3[65];
            if (hx_canon_key("k", 1, w, NULL, NULL, k3) == 0 && r1 == 0 && strcmp(k1, k3)) BUG("re-parsing changed a key");
        }
        json_decref(nv);
        json_decref(w);
        free(b);
    }
    free(a);
    json_decref(v);
    return 0;
}
