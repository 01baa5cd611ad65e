/* optimizer.h: AdamW (decoupled weight decay, PyTorch's update order) and
 * SGD with momentum over the trainable parameters of a parameter table,
 * global-norm gradient clipping, and zeroing of gradients. Parameters with
 * no gradient (frozen) get no optimizer state at all. Parameters live on
 * the host (f32 or f64) or all on the GPU (f32); the state is kept where
 * they are, and the update runs there with the same arithmetic. */
#ifndef HUG_OPTIM_OPTIMIZER_H
#define HUG_OPTIM_OPTIMIZER_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/error.h"
#include "../nn/param.h"

enum optim_kind {
	OPTIM_ADAMW,
	OPTIM_SGD,
};

struct optim_config {
	enum optim_kind kind;
	double beta1, beta2;  /* AdamW: 0.9, 0.999 */
	double eps;           /* AdamW: 1e-8 */
	double weight_decay;  /* decoupled for AdamW, added to the gradient for SGD */
	double momentum;      /* SGD: 0 means plain SGD */
	bool nesterov;        /* SGD */
};

/* Per trainable parameter (or, with a sharded optimizer, per piece of one
 * that falls in this rank's range). */
struct optim_slot {
	struct param *param;
	bool decay;             /* weight decay applies */
	int64_t off, len;       /* elements [off, off + len) of the parameter */
	struct tensor *m;       /* AdamW exp_avg / SGD momentum buffer, (len), or NULL */
	struct tensor *v;       /* AdamW exp_avg_sq (len), NULL for SGD */
	void *w, *g;            /* where the slot's len values and gradients
				   live (ZeRO-2/3 shard buffers); NULL:
				   param->t->data and ->grad->data at off */
};

struct optimizer {
	struct optim_config cfg;
	struct param_table *table; /* borrowed */
	int n;                  /* slots */
	struct optim_slot *slots;
	int64_t lo, hi;         /* the range of the flattened trainable elements
				   this optimizer updates (all of them unless
				   sharded) */
	int64_t step;           /* updates done */
	struct arena state;     /* all of m and v, one block */
	struct tensor *views;   /* n slot views, for one device norm call per step */
	struct tensor **view_ptrs;
};

/* AdamW defaults of PyTorch (betas 0.9/0.999, eps 1e-8, weight decay 0.01). */
struct optim_config optim_config_adamw(void);

/* Builds the optimizer over the parameters of `pt` that have a gradient,
 * with zeroed state. Decay applies to every parameter not marked no_decay
 * in the table (biases and LayerNorm weights). The table must outlive the
 * optimizer. */
void optim_init(struct optimizer *o, const struct optim_config *cfg,
		struct param_table *pt);

/* As optim_init, keeping state only for the elements [lo, hi) of the
 * trainable parameters flattened in table order (ZeRO-1: each
 * data-parallel rank updates its own range). */
void optim_init_range(struct optimizer *o, const struct optim_config *cfg,
		      struct param_table *pt, int64_t lo, int64_t hi);

void optim_free(struct optimizer *o);

/* Sets decay for every trainable parameter whose name matches the
 * fnmatch(3) pattern; returns how many matched. */
int optim_set_decay(struct optimizer *o, const char *pattern, bool decay);

/* One update with learning rate lr from the gradients now in the
 * parameters' .grad; increments o->step. */
void optim_step(struct optimizer *o, double lr);

/* Zeroes every trainable parameter's gradient (all of the table's, also
 * outside a sharded optimizer's range). */
void optim_zero_grad(struct optimizer *o);

/* The L2 norm of the slots' gradients (squares summed in double): the
 * global norm on one process; NaN or inf when a gradient is not finite. */
double optim_grad_norm(const struct optimizer *o);

/* Gradient clipping, the one rule the trainer and the tests use: given the
 * global gradient norm `norm` (optim_grad_norm, or one reduced over the
 * ranks that share the gradients), when max_norm > 0 and the norm is
 * finite and above it, scales every slot's gradient by
 * max_norm / (norm + 1e-6) as torch.nn.utils.clip_grad_norm_ does (a NaN
 * or inf norm scales nothing). Returns the factor applied (1: none). */
double optim_clip_grads(struct optimizer *o, double norm, double max_norm);

/* Sum of squared gradient elements over the slots (in double), counting
 * only the parameters for which include(param) is true (NULL: all). */
double optim_grad_sumsq(const struct optimizer *o, bool (*include)(const struct param *));
/* Multiplies every slot's gradient elements by coef. */
void optim_scale_grads(struct optimizer *o, double coef);

/* Points slot s's values and gradients at w and g (len elements each, on
 * the parameter's device; NULL: back to the parameter's own tensors). */
void optim_slot_retarget(struct optim_slot *s, void *w, void *g);

/* Bytes of optimizer state. */
size_t optim_state_bytes(const struct optimizer *o);

#endif
