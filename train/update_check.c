/* update_check.c: the post-update non-finite guard of trainer_step. The
 * update has already happened, so a bad state cannot be skipped: the run
 * stops and the last checkpoint stays what it was. */
#include "update_check.h"

#include "../optim/finite_check.h"
#include "../parallel/comm.h"
#include "trainer.h"

int trainer_check_update(struct trainer *t, struct hug_error *err)
{
	char what[256] = "";
	int flag = optim_find_nonfinite(&t->opt, what, sizeof(what));
	comm_allreduce(&t->par->world, &flag, 1, DT_I32, COMM_MAX);
	if (!flag)
		return 0;
	return hug_error_set(err, "step %lld: %s holds a non-finite value after the optimizer "
			     "update; stopping without writing a checkpoint (the last one is "
			     "intact; lowering optim.lr or optim.weight_decay helps)",
			     (long long)t->step + 1, what[0] ? what : "a tensor on another rank");
}
