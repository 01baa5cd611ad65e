/* kv_cache.c: the key/value cache of incremental decoding (kv_cache.h). */
#include "kv_cache.h"

#include <string.h>

#include "../autograd/backend.h"
#include "../base/alloc.h"

void kv_cache_init(struct kv_cache *kv, int n_layer, int64_t heads, int64_t head_dim,
		   enum dtype dt, const struct arena_allocator *allocator,
		   int64_t batch, int64_t max_len)
{
	int64_t h = heads, d = head_dim;
	memset(kv, 0, sizeof(*kv));
	kv->batch = batch;
	kv->max_len = max_len;
	size_t per = (size_t)(batch * h * max_len * d) * dtype_size(dt) + 2 * ARENA_ALIGN;
	arena_init(&kv->mem, "kv-cache", per * 2 * (size_t)n_layer +
		   (size_t)(batch * max_len) * 4 + 4 * ARENA_ALIGN, allocator);
	kv->k = hug_calloc((size_t)n_layer, sizeof(*kv->k));
	kv->v = hug_calloc((size_t)n_layer, sizeof(*kv->v));
	for (int i = 0; i < n_layer; i++) {
		kv->k[i] = tensor_new(&kv->mem, dt, TENSOR_SHAPE(batch, h, max_len, d));
		kv->v[i] = tensor_new(&kv->mem, dt, TENSOR_SHAPE(batch, h, max_len, d));
	}
	kv->mask = tensor_zeros(&kv->mem, DT_I32, TENSOR_SHAPE(batch, max_len));
	kv->host_mask = hug_calloc((size_t)(batch * max_len), sizeof(int32_t));
}

void kv_cache_free(struct kv_cache *kv)
{
	hug_free(kv->k);
	hug_free(kv->v);
	hug_free(kv->host_mask);
	arena_free(&kv->mem);
	memset(kv, 0, sizeof(*kv));
}

void kv_cache_append(struct ag_ctx *ctx, struct kv_cache *kv, int layer,
		     struct tensor **k, struct tensor **v)
{
	int64_t t = (*k)->shape[2], n = kv->len + t;
	const struct ag_backend *be = ag_backend_get(ctx->step->allocator->device);
	be->copy(ag_slice(ctx, kv->k[layer], 2, kv->len, t), *k);
	be->copy(ag_slice(ctx, kv->v[layer], 2, kv->len, t), *v);
	*k = ag_slice(ctx, kv->k[layer], 2, 0, n);
	*v = ag_slice(ctx, kv->v[layer], 2, 0, n);
}
