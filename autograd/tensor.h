/* tensor.h: the tensor: up to 4 dims with shape and strides (views share
 * storage), a dtype, a device, an optional gradient and the tape node that
 * produced it. Tensors live in arenas and never own their storage. */
#ifndef HUG_AUTOGRAD_TENSOR_H
#define HUG_AUTOGRAD_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "dtype.h"

#define TENSOR_MAX_DIMS 4

struct ag_node;

struct tensor {
	enum dtype dtype;
	enum device device;
	int ndim;                        /* 0 (a scalar) .. TENSOR_MAX_DIMS */
	int64_t shape[TENSOR_MAX_DIMS];  /* entries past ndim are 1 */
	int64_t stride[TENSOR_MAX_DIMS]; /* in elements; past ndim are 0 */
	void *data;                      /* the first element */
	struct tensor *grad;             /* contiguous, same shape and dtype;
					    NULL until a gradient exists */
	bool requires_grad;
	struct ag_node *node;            /* op that made it; NULL for leaves */
	int32_t pending;                 /* leaves, during backward: uses whose
					    gradient is still to come */
	const char *name;                /* optional, for messages */
};

/* Returns a new contiguous tensor of `ndim` dims in arena `a` (the device is
 * the arena's), contents unspecified. Shapes must be >= 0 and ndim in
 * 0..TENSOR_MAX_DIMS (a panic otherwise: callers validate user input). */
struct tensor *tensor_new(struct arena *a, enum dtype dt, int ndim,
			  const int64_t *shape);
/* As tensor_new, zero-filled. */
struct tensor *tensor_zeros(struct arena *a, enum dtype dt, int ndim,
			    const int64_t *shape);
/* A new tensor with the same dtype and shape as `like`, contiguous, in `a`. */
struct tensor *tensor_new_like(struct arena *a, const struct tensor *like);

/* Convenience: TENSOR_SHAPE(2, 3) expands to `2, (const int64_t[]){2, 3}`. */
#define TENSOR_SHAPE(...)                                                      \
	(int)(sizeof((const int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)),     \
		(const int64_t[]){ __VA_ARGS__ }

/* Marks a leaf tensor as trainable and gives it a zeroed gradient buffer in
 * arena `grad_arena` (normally the model arena). */
void tensor_set_requires_grad(struct tensor *t, struct arena *grad_arena);

/* Product of the shape (1 for a scalar). */
int64_t tensor_numel(const struct tensor *t);
/* Bytes of numel elements. */
size_t tensor_nbytes(const struct tensor *t);
/* True when strides are the row-major strides of the shape (dims of size 1
 * may have any stride). */
bool tensor_is_contiguous(const struct tensor *t);
/* True when both tensors have the same ndim and shape. */
bool tensor_same_shape(const struct tensor *a, const struct tensor *b);
/* Fills `stride` with the row-major strides of `shape`. */
void tensor_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);

/* Writes "[2, 3, 5] f32" into buf (always NUL-terminated); returns buf. */
char *tensor_describe(const struct tensor *t, char *buf, size_t n);

/* Host tensors only: copies the logical elements (row-major order, strides
 * respected) to/from doubles, converting the dtype. */
void tensor_read_f64(const struct tensor *t, double *out);
void tensor_write_f64(struct tensor *t, const double *in);
/* Fills a host float tensor with a constant. */
void tensor_fill(struct tensor *t, double value);

#endif
