/* train_startup.h: what `hug train` prints before its first step: the
 * model, its parameters, the layout, the tokens per step, the memory plan
 * (train/mem_plan.h) and the command that resumes the run. */
#ifndef HUG_CLI_TRAIN_STARTUP_H
#define HUG_CLI_TRAIN_STARTUP_H

#include <stdio.h>

struct recipe;
struct trainer;

/* Prints the start-up summary of trainer t (built from recipe r, loaded
 * from `path` with overrides ov[0..n_ov)) for `world` processes, whose
 * tensor x data layout is t->par's, to out. */
void train_print_startup(const struct recipe *r, const struct trainer *t, const char *path,
			 const char *const *ov, int n_ov, int world, FILE *out);

#endif
