/* bloom_device.h: a BLOOM model on another device, and its mixed-precision
 * view. The trainer builds (or loads) the model on the host, where the
 * initialisation and the Hugging Face loaders run, then moves it to the
 * GPU; checkpoints copy it back. With bf16 compute the f32 parameters stay
 * the master weights and each forward casts them on the tape, so their
 * gradients arrive in f32. */
#ifndef HUG_NN_BLOOM_DEVICE_H
#define HUG_NN_BLOOM_DEVICE_H

#include "bloom.h"

/* A twin of host model `src` in arenas of `allocator` (NULL: another host
 * copy): the same config, tensor-parallel place, dtype, parameter names,
 * order and shard specs, with src's values. With `trainable`, every
 * parameter gets a zeroed gradient. LoRA adapters are not carried over.
 * Free with bloom_model_free. */
void bloom_model_to_device(struct bloom_model *dst, const struct bloom_model *src,
			   const struct arena_allocator *allocator, bool trainable);

/* Copies every parameter value of src into dst (the same names in the same
 * order and shapes, as bloom_model_to_device makes them), across devices. */
void bloom_model_copy_weights(struct bloom_model *dst, const struct bloom_model *src);

/* A view of m for compute in dtype dt: *out is m with each parameter
 * replaced by ag_cast(ctx, p, dt), recorded on the tape so that backward
 * brings the gradients to m's parameters in their own dtype; `layers` holds
 * n_layer entries and receives the cast blocks (adapters kept as they
 * are). The casts live in ctx's step arena: call it again after every
 * ag_ctx_reset. True, or false (ctx->err set) when a cast failed. */
bool bloom_model_cast(struct ag_ctx *ctx, const struct bloom_model *m, enum dtype dt,
		      struct bloom_model *out, struct bloom_layer *layers);

#endif
