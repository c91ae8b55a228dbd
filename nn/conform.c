/* conform.c - tensor and id comparisons for hx conform (see conform.h). */
#include <math.h>
#include "nn/conform.h"

void nn_check_init(nn_check *c, FILE *out)
{
    c->out = out;
    c->n_ok = c->n_fail = 0;
}

int nn_check_tensor(nn_check *c, const char *name, const float *got, const float *want, size_t n, double tol)
{
    double max_abs = 0, max_ref = 0;
    int finite = 1;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) finite = 0;
        double d = fabs((double)got[i] - (double)want[i]);
        if (d > max_abs || isnan(d)) max_abs = d;
        if (fabs(want[i]) > max_ref) max_ref = fabs(want[i]);
    }
    double rel = max_ref > 0 ? max_abs / max_ref : max_abs;
    int ok = finite && rel <= tol;
    fprintf(c->out, "%-52s max_abs %.3e  max_rel %.3e  tol %.0e  %s%s\n", name, max_abs, rel, tol,
            ok ? "ok" : "FAIL", finite ? "" : " (non-finite values)");
    if (ok) c->n_ok++; else c->n_fail++;
    return ok ? 0 : -1;
}

int nn_check_ints(nn_check *c, const char *name, const int32_t *got, size_t n_got, const int32_t *want, size_t n_want)
{
    size_t n = n_got < n_want ? n_got : n_want, i = 0;
    while (i < n && got[i] == want[i]) i++;
    int ok = i == n && n_got == n_want;
    if (ok)
        fprintf(c->out, "%-52s %zu ids exact  ok\n", name, n);
    else if (i < n)
        fprintf(c->out, "%-52s first mismatch at %zu: got %d want %d (of %zu)  FAIL\n", name, i, got[i], want[i],
                n_want);
    else
        fprintf(c->out, "%-52s length %zu, want %zu  FAIL\n", name, n_got, n_want);
    if (ok) c->n_ok++; else c->n_fail++;
    return ok ? 0 : -1;
}

void nn_check_fail(nn_check *c, const char *name, const char *why)
{
    fprintf(c->out, "%-52s %s  FAIL\n", name, why);
    c->n_fail++;
}
