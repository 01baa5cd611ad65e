/* loader_sample.c: reading one sample window of a source across shard
 * boundaries, and turning a window into an (inputs, targets) row. Used by
 * the batch producer (loader_prefetch.c) and the held-out pass
 * (loader_valid.c); depends on nothing else of the loader. */
#include "loader_internal.h"

#include <string.h>

#include "../base/panic.h"

/* The shard of src holding stream offset off (< n_tokens): the last one
 * starting at or before it, which skips empty shards. */
static int find_shard(const struct loader_src *src, int64_t off)
{
	int lo = 0, hi = src->n_files - 1;
	while (lo < hi) {
		int mid = lo + (hi - lo + 1) / 2;
		if (src->start[mid] <= off)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

int loader_read_sample(const struct loader *L, int s, int64_t idx,
		       int32_t *win, uint8_t *wmask, struct hug_error *err)
{
	const struct loader_src *src = &L->src[s];
	int64_t off = idx * (L->T + 1), need = L->T + 1, done = 0;
	int f = find_shard(src, off);
	while (done < need) {
		HUG_ASSERT(f < src->n_files);
		int64_t in = off + done - src->start[f];
		int64_t avail = src->start[f + 1] - src->start[f] - in;
		int64_t k = need - done < avail ? need - done : avail;
		if (k > 0 && shard_reader_read(src->shards[f], in, k, win + done,
					       wmask + done, err) < 0)
			return -1;
		done += k;
		f++;
	}
	return 0;
}

void loader_window_to_row(const int32_t *win, const uint8_t *wmask,
			  int64_t T, int32_t *inputs, int32_t *targets)
{
	memcpy(inputs, win, (size_t)T * sizeof(int32_t));
	for (int64_t t = 0; t < T; t++)
		targets[t] = wmask[t + 1] ? win[t + 1] : LOADER_IGNORE_INDEX;
}
