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

/* A view of m (not itself a view) for compute in dtype dt: in the forward
 * of *out every parameter of m is used through ag_cast(ctx, p, dt), so
 * backward brings the gradients to m's parameters in their own dtype. The
 * embedding's casts are recorded here; each block's (adapters kept as they
 * are) and ln_f's are recorded by bloom_forward just before it uses them,
 * so their backward, and with it the completion of each block's gradients
 * (which starts the data-parallel all-reduce of its bucket), follows that
 * block's backward instead of waiting for the end. The casts live in ctx's
 * step arena: call it again after every ag_ctx_reset. True, or false
 * (ctx->err set) when a cast failed. */
bool bloom_model_cast(struct ag_ctx *ctx, const struct bloom_model *m, enum dtype dt,
		      struct bloom_model *out);

#endif
