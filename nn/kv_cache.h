/* kv_cache.h: the key/value cache of incremental decoding, shared by the
 * model families: per layer k and v (B, Hkv, max_len, D) on the model's
 * device, the key mask of the positions filled so far and its host copy. */
#ifndef HUG_NN_KV_CACHE_H
#define HUG_NN_KV_CACHE_H

#include <stdint.h>

#include "../autograd/autograd.h"

struct kv_cache {
	int64_t batch, max_len;
	int64_t len;                      /* positions filled so far */
	struct arena mem;
	struct tensor **k, **v;           /* per layer (B, Hkv, max_len, D) */
	struct tensor *mask;              /* (B, max_len) i32 */
	int32_t *host_mask;               /* its copy on the host (zeros until a family fills it) */
};

/* An empty cache of n_layer layers of `heads` key/value heads of head_dim
 * values, dtype dt, for `batch` sequences of up to max_len positions, in
 * memory from `allocator` (the model's device). */
void kv_cache_init(struct kv_cache *kv, int n_layer, int64_t heads, int64_t head_dim,
		   enum dtype dt, const struct arena_allocator *allocator,
		   int64_t batch, int64_t max_len);
void kv_cache_free(struct kv_cache *kv);

/* Writes k and v (B, Hkv, T, D), the new positions of layer `layer`, after
 * the kv->len cached ones, and replaces them by views of all kv->len + T
 * cached positions (kv->len itself is advanced by the caller, once every
 * layer has appended). */
void kv_cache_append(struct ag_ctx *ctx, struct kv_cache *kv, int layer,
		     struct tensor **k, struct tensor **v);

#endif
