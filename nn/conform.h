/* conform.h - comparing computed tensors with reference fixtures: one printed line per quantity (hx conform). */
#ifndef NN_CONFORM_H
#define NN_CONFORM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct nn_check {
    FILE *out;     /* where lines go (stdout for hx conform) */
    int n_ok, n_fail;
} nn_check;

void nn_check_init(nn_check *c, FILE *out);

/*
 * Tolerances on a GPU (hx conform --device cuda), where matmuls take bf16 operands (unit roundoff 2^-9) with fp32
 * accumulation. The fixtures' tiny random models amplify that rounding far beyond a fixed tolerance (hybrid
 * gradients move by up to 1.7 max_rel, measured with --device guard:bf16 = the CPU ops on bf16-rounded matmul
 * operands), so a GPU run is compared with that CPU twin (conform_model.c, conform_kda.c); these tolerances
 * cover fp32 summation-order differences that flip a bf16 rounding here and there. The CPU keeps the
 * fixtures' contract (1e-4 outputs, 1e-3 gradients).
 */
#define NN_TOL_OUT_BF16 3e-2
#define NN_TOL_GRAD_BF16 6e-2

/*
 * Compares got with want (n floats). Prints "name  max_abs  max_rel  tol  ok|FAIL" where
 * max_abs = max |got - want| and max_rel = max_abs / max |want| (relative to the tensor's magnitude, as the
 * fixtures' contract says). Passes iff max_rel <= tol and every got is finite. Returns 0 if ok, -1 if not.
 */
int nn_check_tensor(nn_check *c, const char *name, const float *got, const float *want, size_t n, double tol);

/* Exact equality of integer sequences (token ids); prints the first mismatch position. */
int nn_check_ints(nn_check *c, const char *name, const int32_t *got, size_t n_got, const int32_t *want, size_t n_want);

/* A failure that is not a comparison (missing tensor, engine error): counted and printed as FAIL. */
void nn_check_fail(nn_check *c, const char *name, const char *why);

#endif
