/* cmd_version.c - `hx version`: the version and whether this build has CUDA. */
#include <stdio.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"

int cmd_version(hx_cli *c)
{
    (void)c;
#ifdef HX_CUDA
    printf("hx %s (cpu, cuda)\n", HX_VERSION);
#else
    printf("hx %s (cpu)\n", HX_VERSION);
#endif
    return 0;
}
