/* op_table.h: the expansions of the op list autograd/ops.def: each
 * consumer defines AG_OP (and AG_OP_SHARED) with one of these and includes
 * ops.def. KIND is COMPUTE (forward and backward kernels) or VIEW (a
 * backward kernel only). */
#ifndef HUG_AUTOGRAD_OP_TABLE_H
#define HUG_AUTOGRAD_OP_TABLE_H

#define AG_OP_IS_VIEW_COMPUTE false
#define AG_OP_IS_VIEW_VIEW true
/* the forward kernel fn of a COMPUTE op, NULL for a view */
#define AG_OP_FWD_COMPUTE(fn) fn
#define AG_OP_FWD_VIEW(fn) NULL
#define AG_OP_FWD_PROTO_COMPUTE(fn) void fn(struct ag_node *n);
#define AG_OP_FWD_PROTO_VIEW(fn)

/* The prototypes of op `l`'s kernels named prefix_l_forward/_backward. */
#define AG_OP_PROTOS(prefix, l, kind)                                          \
	AG_OP_FWD_PROTO_##kind(prefix##_##l##_forward)                         \
	void prefix##_##l##_backward(struct ag_node *n);

/* The backend-table slot (struct ag_backend's .op[]) of op U / l. */
#define AG_OP_SLOT(prefix, U, l, kind)                                         \
	[AG_OP_##U] = { .forward = AG_OP_FWD_##kind(prefix##_##l##_forward),   \
			.backward = prefix##_##l##_backward },

#endif
