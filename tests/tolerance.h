/*
 * tolerance.h - every numerical tolerance of the test suite, with the reason for its size.
 */
#ifndef ELM_TOLERANCE_H
#define ELM_TOLERANCE_H

/* float64 against the reference's float64 outputs, relative to the tensor's largest magnitude:
 * the computation is the same up to summation order, so only ~1e-15 rounding differs; 1e-10 is
 * the parity README's suggestion and leaves room for T = 300 steps of recurrence. */
#define TOL_F64_REL_TO_MAX 1e-10

/* float32 against the float64 reference: the reference's own float32 error is up to 2.2e-5 of
 * max|y| (best_elm_neuron); our summation order differs (sparse branch sums), so we allow the
 * README's 1e-4 of max|y| and 2e-3 absolute. */
#define TOL_F32_REL_TO_MAX 1e-4
#define TOL_F32_ABS 2e-3

/* Gradients in float64 against the reference's autograd: same maths, different order of
 * accumulation over 50 steps and 3 samples; 1e-9 of each tensor's max |value| (issue 2). */
#define TOL_GRAD_REL_TO_MAX 1e-9

/* Central finite differences in float64 with h = 1e-6: truncation error O(h^2 f''') ~ 1e-12 and
 * cancellation error ~ eps * |L| / h ~ 1e-10 * |L|; 1e-6 relative to max(1, |g|, |g_fd|) is far
 * above both and far below any real gradient bug (STYLE.md). */
#define TOL_FD 1e-6

#endif
