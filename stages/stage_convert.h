/* stage_convert.h - the convert stage's library entry points (used by its stage kind and its tests). */
#ifndef HX_CONVERT_H
#define HX_CONVERT_H

#include <stdint.h>
#include <jansson.h>

/* Marks in attn[0..L) the layers that stay attention for a `layers` spec (string or list; docs/kda.md). */
int stage_convert_layers(const json_t *spec, int L, unsigned char *attn);
/* Teacher checkpoint dir -> hx_hybrid checkpoint in out_dir (docs/models.md section 3, the conversion).
 * mixer "kda"|"gdn", conv_act "identity"|"silu", gate_rank 0 = head_dim. */
int stage_convert(const char *teacher_dir, const char *out_dir, const json_t *layers, const char *mixer,
               const char *conv_act, int gate_rank, uint64_t seed);

#endif
