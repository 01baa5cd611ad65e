/* schedule.h: learning-rate schedules (linear warmup, then cosine or linear
 * decay to a minimum, or constant) and BLOOM/Megatron's global batch-size
 * ramp-up. All are pure functions of the step or of the samples consumed,
 * so a resumed run recomputes them exactly. */
#ifndef HUG_OPTIM_SCHEDULE_H
#define HUG_OPTIM_SCHEDULE_H

#include <stdint.h>

enum lr_decay {
	LR_CONSTANT,
	LR_COSINE,
	LR_LINEAR,
};

struct lr_schedule {
	enum lr_decay decay;
	double max_lr;          /* reached at the end of warmup */
	double min_lr;          /* reached at decay_steps and kept after */
	int64_t warmup_steps;   /* >= 0 */
	int64_t decay_steps;    /* update number where decay ends (> warmup) */
};

/* The learning rate of update number s = step + 1 (step counts updates
 * already done, from 0):
 *   s <= W:  max_lr * s / W                         (linear warmup)
 *   else:    r = clamp((s - W) / (D - W), 0, 1)
 *            cosine:   min + (max - min) * (1 + cos(pi r)) / 2
 *            linear:   max - (max - min) * r
 *            constant: max
 * with W = warmup_steps and D = decay_steps. */
double lr_at(const struct lr_schedule *s, int64_t step);

/* Megatron's batch-size ramp-up: start at `start`, grow by `increment`
 * every ramp_samples / ((final - start) / increment) consumed samples, and
 * stay at `final` once ramp_samples have been consumed. With start == 0 (or
 * start >= final) there is no ramp-up and the result is always `final`. */
struct batch_rampup {
	int64_t start, increment, ramp_samples, final;
};

/* The global batch size for the step that begins after `consumed` samples. */
int64_t batch_at(const struct batch_rampup *r, int64_t consumed);

#endif
