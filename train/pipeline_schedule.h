/* pipeline_schedule.h: the pure parts of pipeline parallelism, free of
 * communication: how the blocks split into stages (balanced by parameter
 * count, or an explicit split) and the 1F1B order of forwards and
 * backwards each stage runs, with a timeline simulation that gives the
 * schedule's idle fraction (the bubble; (P-1)/(m+P-1) in theory when every
 * stage takes the same time). */
#ifndef HUG_TRAIN_PIPELINE_SCHEDULE_H
#define HUG_TRAIN_PIPELINE_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/error.h"

/* Splits n_layer blocks into P contiguous stages: stage s holds blocks
 * [lo[s], lo[s + 1]) (lo has P + 1 entries, lo[0] 0, lo[P] n_layer). With
 * `explicit_layers` (P counts, each >= 1, summing to n_layer) that split;
 * else the one that minimises the largest stage's parameters, where every
 * block weighs `per_layer`, the first stage adds `first_extra` (the
 * embedding) and the last `last_extra` (final norm and head). Every stage
 * gets at least one block. -1 with err (naming `what`, the recipe key)
 * when n_layer < P or the explicit split does not fit. */
int pipeline_split(int n_layer, int P, const int *explicit_layers, double per_layer,
		   double first_extra, double last_extra, const char *what, int *lo,
		   struct hug_error *err);

/* One step of a stage's schedule: the forward or backward of micro-batch
 * `micro`. */
struct pipe_op {
	bool backward;
	int micro;
};

/* The 1F1B order (PipeDream-Flush, as Megatron runs it) for stage s of P
 * over m micro-batches: min(P - s - 1, m) warm-up forwards, then one
 * forward and one backward alternately, then the remaining backwards.
 * Writes 2 m ops into ops; returns the largest number of micro-batches in
 * flight (forward done, backward not yet), at most P - s. */
int pipeline_1f1b(int P, int s, int m, struct pipe_op *ops);

/* Simulates the 1F1B schedule of P stages over m micro-batches where each
 * forward takes tf and each backward tb on every stage and messages are
 * free: returns the bubble, the fraction of the step's time
 * P x makespan a stage spends idle. */
double pipeline_bubble_sim(int P, int m, double tf, double tb);

/* The 1F1B bubble in theory: (P - 1) / (m + P - 1). */
double pipeline_bubble_theory(int P, int m);

#endif
