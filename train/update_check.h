/* update_check.h: after an optimizer update, all ranks agree whether any
 * weight or optimizer moment became NaN or Inf. */
#ifndef HUG_TRAIN_UPDATE_CHECK_H
#define HUG_TRAIN_UPDATE_CHECK_H

#include "../base/error.h"

struct trainer;

/* Collective over t->par->world: every rank checks its own parameter range
 * and optimizer state (optim_find_nonfinite), then a max-allreduce of the
 * flag makes every rank return the same. Returns 0 when all is finite;
 * else -1 with an error naming the step (t->step + 1, the update just
 * done) and this rank's first bad tensor. Writes no checkpoint. */
int trainer_check_update(struct trainer *t, struct hug_error *err);

#endif
