/* slurm_internal.h - what the Slurm executor's files share (slurm.c, slurm_follow.c). */
#ifndef HX_SLURM_INTERNAL_H
#define HX_SLURM_INTERNAL_H

#include <jansson.h>
#include "interp/slurm.h"

/* Run ARGV (no shell) and capture its stdout and stderr (xmalloc'd). Returns the exit status, or -1 + error. */
int hx_slurm_run_cmd(char *const *argv, char **out, char **err);
/* S without trailing newlines, spaces and CRs (in place). */
char *hx_slurm_chomp(char *s);
/* scancel the job ids in IDS (a JSON array of strings); 0 or -1 + error. */
int hx_slurm_scancel(const json_t *ids);

#endif
