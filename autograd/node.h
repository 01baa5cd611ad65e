/* node.h: the op enum (from the op list ops.def), per-op parameters and the tape node. Backends see
 * this header: a kernel receives the node and reads its inputs, output,
 * saved tensors and parameters from it. */
#ifndef HUG_AUTOGRAD_NODE_H
#define HUG_AUTOGRAD_NODE_H

#include <stdint.h>

#include "op_table.h"
#include "tensor.h"

/* AG_OP_MATMUL, ...: one per line of ops.def, in its order. */
enum ag_op {
#define AG_OP(U, l, kind) AG_OP_##U,
#include "ops.def"
	AG_OP_COUNT
};

/* Static facts about an op, indexed by enum ag_op. */
struct ag_op_info {
	const char *name;  /* "matmul", ... as used in error messages */
	bool is_view;      /* forward is metadata only; backends supply only
			      the backward kernel */
};
extern const struct ag_op_info ag_op_info[AG_OP_COUNT];

/* A collective over a tensor-parallel group, for the ops that communicate
 * (parallel/ provides one per communicator). */
struct ag_collective {
	void *state;
	int rank, size;
	/* in-place all-reduce of n elements of buf (device memory of `dev`),
	 * summing, or taking the maximum when max */
	void (*allreduce)(void *state, void *buf, int64_t n, enum dtype dt, bool max,
			  enum device dev);
};

#define AG_MAX_INPUTS 6

struct ag_region;
#define AG_MAX_SAVED 2
#define AG_DIM_ALL (-1000) /* reduce over every dim */

/* Op parameters; the member used is the one named for the op. */
union ag_params {
	struct { bool trans_a, trans_b; } matmul;
	struct { double alpha; } scale;
	struct { int dim; } reduce;                  /* sum, mean */
	struct { int perm[TENSOR_MAX_DIMS]; } permute;
	struct { int dim; int64_t start; } slice;
	struct { double eps; } layernorm;
	struct { double eps; } rmsnorm;
	struct { double p; uint64_t seed, offset; } dropout;
	struct {
		double scale;
		bool causal;
		int64_t window;           /* sliding window, 0: none (causal only) */
		bool alibi;               /* in[3] holds the slopes (H); in[4]
					     the key mask, in[5] the segments
					     (B, Tk) i32, or NULL */
		int64_t group;            /* query heads per key/value head (H / Hkv) */
		double p;                 /* dropout on the probabilities */
		uint64_t seed, offset;
		int64_t head_offset;      /* global index of local head 0 */
		int64_t n_head_total;     /* heads over all tensor-parallel ranks */
		bool tiled;               /* the tiled kernel: saved[0] holds the
					     log-sum-exp (B, H, Tq) (f32 for bf16),
					     not the probabilities (B, H, Tq, Tk) */
	} attention;
	struct {
		int32_t ignore_index;
		int64_t count;            /* counted targets (set by forward) */
		int64_t vocab_offset;     /* global id of local logit 0 */
		const struct ag_collective *coll; /* vocab-parallel: reduce over it */
	} cross_entropy;
	struct { int64_t vocab_offset; } embedding; /* global id of local row 0 */
	struct { const struct ag_collective *coll; } tp;
	struct { struct ag_region *region; } checkpoint; /* autograd/checkpoint.c */
};

/* One recorded op. Inputs that are optional (a bias, a mask) may be NULL.
 * For views, out->data aliases in[0]'s storage. */
struct ag_node {
	enum ag_op op;
	int n_in;
	struct tensor *in[AG_MAX_INPUTS];
	struct tensor *out;
	struct tensor *saved[AG_MAX_SAVED]; /* kernel-defined, e.g. LN stats */
	/* the backend's own scratch for this node, kept from forward to
	 * backward, of the size its scratch_numel hook asked for (else NULL) */
	struct tensor *scratch;
	union ag_params p;
	struct ag_node *prev; /* the node recorded before this one */
};

#endif
