/* canon.h - canonical JSON (sorted keys, normalised numbers) and the content key of a stage instance. */
#ifndef HX_CANON_H
#define HX_CANON_H

#include <stddef.h>
#include <jansson.h>

/*
 * Canonical text of a JSON value: object keys sorted bytewise, no whitespace, strings with the
 * minimal JSON escapes (UTF-8 kept as is), numbers normalised: an integral value within +-2^53 prints
 * as an integer (2.0 == 2), any other real in its shortest round-trip form (1e-3 == 0.001).
 * Returns an xmalloc'd string, or NULL and error(...) for a value that has no canonical form.
 */
char *hx_canon_dump(const json_t *v);

/* Shortest decimal text of d that reads back as exactly d (integral values without a fraction). */
void hx_canon_number(double d, char *buf, size_t n);

/* A deep copy with integral reals turned into integers (what hashing sees). */
json_t *hx_canon_normalize(const json_t *v);

/*
 * The key of a stage instance: SHA-256 hex of the canonical JSON of
 * {kind, kind_version, with, inputs: {role: key}} (+ "hx_binary": digest when binary_digest != NULL,
 * which `--strict` asks for). Returns 0, or -1 with error(...).
 */
int hx_canon_key(const char *kind, int kind_version, const json_t *with, const json_t *inputs,
                 const char *binary_digest, char key[65]);
/* The same with external inputs: EXTERNAL is {field: [{path, sha256}, ...]} (plan.c); only the digests
 * are hashed, as "external": {field: [sha256, ...]}, so a key names content, not where it lies. An
 * empty or NULL EXTERNAL gives hx_canon_key's key. */
int hx_canon_key_ext(const char *kind, int kind_version, const json_t *with, const json_t *inputs,
                     const json_t *external, const char *binary_digest, char key[65]);

#endif
