/* backend.h: a backend is a table of kernels indexed by op, one per device.
 * The CPU backend is the reference; others are tested against it.
 *
 * Kernel contract. forward(n): inputs n->in[] (contiguous unless the op's
 * documentation says otherwise, shapes and dtypes already validated by the
 * op layer) -> writes n->out and any n->saved[] the op allocated.
 * backward(n): reads n->out->grad and accumulates (+=) into n->in[i]->grad
 * for every input whose grad is not NULL; inputs with a NULL grad need no
 * gradient and cost no work. A NULL slot means "not supported on this
 * backend" and is reported as a clean error. */
#ifndef HUG_AUTOGRAD_BACKEND_H
#define HUG_AUTOGRAD_BACKEND_H

#include "node.h"

typedef void (*ag_kernel_fn)(struct ag_node *n);

/* The scalars of one optimizer update (optim/optimizer.c fills them):
 * PyTorch's single-tensor AdamW or SGD. */
struct ag_optim_update {
	bool adamw;                      /* else SGD */
	double lr, weight_decay;         /* this parameter's decay (0: none) */
	double beta1, beta2, eps;        /* AdamW */
	double bc1, bc2;                 /* AdamW: bias corrections 1 - beta^step */
	double momentum;                 /* SGD (0: no momentum buffer) */
	bool nesterov, first;            /* SGD; first: the first step */
};

struct ag_backend {
	const char *name;
	enum device device;
	struct {
		ag_kernel_fn forward;
		ag_kernel_fn backward;
	} op[AG_OP_COUNT];
	/* dst += src, both contiguous with the same numel and dtype. */
	void (*accumulate)(struct tensor *dst, const struct tensor *src);
	/* Every element of float tensor t (any strides) = value. */
	void (*fill)(struct tensor *t, double value);
	/* dst = src element for element: same shape and dtype, any strides
	 * on both sides. Not recorded on the tape. */
	void (*copy)(struct tensor *dst, const struct tensor *src);
	/* Copies `bytes` bytes between any two of host memory and this
	 * backend's memory (either side may be the host) and returns when
	 * they are in place. See autograd/transfer.h. */
	void (*memcpy)(void *dst, const void *src, size_t bytes);
	/* Every element of contiguous float tensor t *= a, in t's precision
	 * (gradient averaging and clipping). */
	void (*scale)(struct tensor *t, double a);
	/* One optimizer update of n elements: parameter p, gradient g and
	 * state m (AdamW's exp_avg, SGD's momentum buffer or NULL) and v
	 * (AdamW's exp_avg_sq), contiguous arrays of float dtype dt in this
	 * backend's memory (dtypes: the CPU f32 and f64, CUDA f32):
	 *   AdamW: p *= 1 - lr wd; m += (1 - b1)(g - m); v = b2 v + (1 - b2) g^2;
	 *          p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)
	 *   SGD:   d = g + wd p; with momentum buf = first ? d : momentum buf + d,
	 *          d = nesterov ? d + momentum buf : buf; p -= lr d
	 * with the scalars rounded to dt first. Asynchronous where the backend is. */
	void (*optim_update)(const struct ag_optim_update *u, enum dtype dt, int64_t n,
			     void *p, const void *g, void *m, void *v);
	/* The sum of squares, accumulated in double in a fixed order, of every
	 * element of the n contiguous float tensors ts (this backend's memory),
	 * for the gradient norm and the finite check; returns to the host (on
	 * CUDA: one wait). */
	double (*sum_squares)(int n, struct tensor *const *ts);
	/* The number of elements (of the output's dtype) of scratch that this
	 * backend's kernels of node n need (the op layer puts it in
	 * n->scratch before the forward); NULL or 0: none. */
	int64_t (*scratch_numel)(const struct ag_node *n);
	/* Waits until every kernel issued so far has finished (NULL: the
	 * backend is synchronous). For the profiler. */
	void (*synchronize)(void);
	/* The allocator of arenas in this backend's memory (NULL on the CPU
	 * backend: arenas default to host memory). */
	const struct arena_allocator *(*allocator)(void);
	/* The first (lowest) position of contiguous i32 tensor t (in this
	 * backend's memory) whose value is outside [lo, hi) and not equal to
	 * `skip` (INT64_MIN: nothing is skipped), with that value in *value;
	 * -1 when every value is inside (always for an empty tensor), and
	 * *value is then untouched. The op layer range-checks embedding ids
	 * and cross-entropy targets with it. A backend whose memory the host
	 * cannot read returns the result to the host, so on such a backend
	 * (CUDA) each call waits for the work issued before it: one
	 * synchronisation per embedding and per cross-entropy call. NULL: the
	 * backend cannot check, and its ids and targets go unchecked. */
	int64_t (*find_out_of_range)(const struct tensor *t, int64_t lo, int64_t hi,
				     int64_t skip, int32_t *value);
};

extern const struct ag_backend ag_cpu_backend;

/* The tensor-parallel ops' kernels, the same for every backend
 * (autograd/tp_kernels.c). */
#define AG_OP(U, l, kind)
#define AG_OP_SHARED(U, l, kind) AG_OP_PROTOS(ag, l, kind)
#include "ops.def"

/* Makes `b` the backend for its device (replacing any earlier one). */
void ag_backend_register(const struct ag_backend *b);
/* The backend for `dev`, or NULL when none is registered (the CPU backend
 * is always registered). */
const struct ag_backend *ag_backend_get(enum device dev);
/* The arena allocator for memory of device `dev` (NULL, meaning the host
 * allocator, for DEV_CPU); a panic when the device has no backend. */
const struct arena_allocator *ag_device_allocator(enum device dev);

#endif
