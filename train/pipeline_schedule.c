/* pipeline_schedule.c: stage split, 1F1B order and bubble simulation
 * (pipeline_schedule.h). */
#include "pipeline_schedule.h"

#include <math.h>
#include <string.h>

#include "../base/alloc.h"

/* Balanced split: dynamic programming over (stages, blocks) for the
 * smallest largest stage cost. */
static void balance(int n, int P, double per, double first, double last, int *lo)
{
	/* best[s][k]: the smallest max cost of stages 0..s-1 holding blocks [0, k) */
	double *best = hug_malloc((size_t)(P + 1) * (size_t)(n + 1) * sizeof(double));
	int *cut = hug_malloc((size_t)(P + 1) * (size_t)(n + 1) * sizeof(int));
#define AT(a, s, k) a[(size_t)(s) * (size_t)(n + 1) + (size_t)(k)]
	for (int s = 0; s <= P; s++)
		for (int k = 0; k <= n; k++)
			AT(best, s, k) = INFINITY;
	AT(best, 0, 0) = 0;
	for (int s = 1; s <= P; s++)
		for (int k = s; k <= n - (P - s); k++)
			for (int j = s - 1; j < k; j++) {
				double c = (k - j) * per + (s == 1 ? first : 0) + (s == P ? last : 0);
				double v = fmax(AT(best, s - 1, j), c);
				if (v < AT(best, s, k)) {
					AT(best, s, k) = v;
					AT(cut, s, k) = j;
				}
			}
	lo[P] = n;
	for (int s = P; s >= 1; s--)
		lo[s - 1] = AT(cut, s, lo[s]);
#undef AT
	hug_free(best);
	hug_free(cut);
}

int pipeline_split(int n_layer, int P, const int *explicit_layers, double per_layer,
		   double first_extra, double last_extra, const char *what, int *lo,
		   struct hug_error *err)
{
	if (P < 1 || n_layer < P)
		return hug_error_set(err, "%s: %d pipeline stages for %d blocks: every stage "
				     "needs at least one block", what, P, n_layer);
	if (!explicit_layers) {
		balance(n_layer, P, per_layer, first_extra, last_extra, lo);
		return 0;
	}
	lo[0] = 0;
	for (int s = 0; s < P; s++) {
		if (explicit_layers[s] < 1)
			return hug_error_set(err, "%s[%d]: %d blocks; expected at least 1", what, s,
					     explicit_layers[s]);
		lo[s + 1] = lo[s] + explicit_layers[s];
		if (lo[s + 1] > n_layer)
			break;
	}
	if (lo[P] != n_layer)
		return hug_error_set(err, "%s: the stages' blocks must sum to the model's %d "
				     "layers", what, n_layer);
	return 0;
}

int pipeline_1f1b(int P, int s, int m, struct pipe_op *ops)
{
	int warm = P - s - 1 < m ? P - s - 1 : m, k = 0, f = 0, b = 0, most = 0;
	for (; f < warm; f++)
		ops[k++] = (struct pipe_op){ false, f };
	for (; f < m; f++) {
		ops[k++] = (struct pipe_op){ false, f };
		most = f + 1 - b > most ? f + 1 - b : most;
		ops[k++] = (struct pipe_op){ true, b++ };
	}
	if (f - b > most)
		most = f - b;
	for (; b < m; b++)
		ops[k++] = (struct pipe_op){ true, b };
	return most;
}

double pipeline_bubble_sim(int P, int m, double tf, double tb)
{
	/* done_f[s][i], done_b[s][i]: when stage s finishes micro i's pass */
	double *df = hug_calloc((size_t)(P * m), sizeof(double));
	double *db = hug_calloc((size_t)(P * m), sizeof(double));
	struct pipe_op **ops = hug_calloc((size_t)P, sizeof(*ops));
	int *next = hug_calloc((size_t)P, sizeof(int));
	double *clock = hug_calloc((size_t)P, sizeof(double));
	for (int s = 0; s < P; s++) {
		ops[s] = hug_malloc((size_t)(2 * m) * sizeof(struct pipe_op));
		pipeline_1f1b(P, s, m, ops[s]);
	}
	/* run ops whose inputs are ready, in each stage's order, until all done */
	int left = 2 * m * P;
	while (left > 0) {
		for (int s = 0; s < P; s++) {
			if (next[s] == 2 * m)
				continue;
			struct pipe_op op = ops[s][next[s]];
			/* finish times are > 0: 0 means not computed yet */
			double ready;
			if (!op.backward)
				ready = s == 0 ? 0 : df[(s - 1) * m + op.micro];
			else
				ready = s == P - 1 ? df[s * m + op.micro] : db[(s + 1) * m + op.micro];
			if (ready == 0 && (op.backward || s > 0))
				continue;
			double start = fmax(clock[s], ready);
			clock[s] = start + (op.backward ? tb : tf);
			(op.backward ? db : df)[s * m + op.micro] = clock[s];
			next[s]++;
			left--;
		}
	}
	double span = 0;
	for (int s = 0; s < P; s++)
		span = fmax(span, clock[s]);
	double busy = (double)P * m * (tf + tb);
	for (int s = 0; s < P; s++)
		hug_free(ops[s]);
	hug_free(ops);
	hug_free(next);
	hug_free(clock);
	hug_free(df);
	hug_free(db);
	return 1.0 - busy / ((double)P * span);
}

double pipeline_bubble_theory(int P, int m)
{
	return (double)(P - 1) / (double)(m + P - 1);
}
