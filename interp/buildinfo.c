/* buildinfo.c - what binary wrote a manifest: version, git commit, compiler flags (not hashed). */
#include "interp/exec.h"

#ifndef HX_COMMIT
#define HX_COMMIT "unknown"
#endif
#ifndef HX_BUILD_FLAGS
#define HX_BUILD_FLAGS "unknown"
#endif

const char *hx_build_commit(void) { return HX_COMMIT; }

const char *hx_build_flags(void)
{
#ifdef HX_CUDA
    return HX_BUILD_FLAGS " cuda";
#else
    return HX_BUILD_FLAGS;
#endif
}
