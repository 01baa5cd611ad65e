/* schedule.c: learning-rate schedules and the batch-size ramp-up. */
#include "schedule.h"

#include <math.h>

double lr_at(const struct lr_schedule *s, int64_t step)
{
	double n = (double)(step + 1);
	double w = (double)s->warmup_steps;
	if (s->warmup_steps > 0 && n <= w)
		return s->max_lr * n / w;
	if (s->decay == LR_CONSTANT)
		return s->max_lr;
	double span = (double)(s->decay_steps - s->warmup_steps);
	double r = span > 0 ? (n - w) / span : 1.0;
	r = r < 0 ? 0 : r > 1 ? 1 : r;
	if (s->decay == LR_COSINE)
		return s->min_lr + (s->max_lr - s->min_lr) * 0.5 * (1.0 + cos(M_PI * r));
	return s->max_lr - (s->max_lr - s->min_lr) * r;
}

int64_t batch_at(const struct batch_rampup *r, int64_t consumed)
{
	if (r->start <= 0 || r->start >= r->final || r->increment <= 0)
		return r->final;
	int64_t increments = (r->final - r->start) / r->increment;
	if (increments <= 0 || r->ramp_samples <= 0)
		return r->final;
	double per = (double)r->ramp_samples / (double)increments;
	int64_t steps = (int64_t)((double)consumed / per);
	int64_t b = r->start + steps * r->increment;
	return b < r->final ? b : r->final;
}
