/* loader_packing.c: document ids and boundary targets of packed sequences
 * (data.packing "document"; see loader_pack_documents in loader.h). */
#include "loader.h"

void loader_pack_documents(const int32_t *inputs, int32_t *targets, int64_t b, int64_t t,
			   int32_t eos, int32_t *segments)
{
	for (int64_t r = 0; r < b; r++) {
		int32_t id = 0;
		for (int64_t j = 0; j < t; j++) {
			segments[r * t + j] = id;
			if (eos >= 0 && inputs[r * t + j] == eos) {
				targets[r * t + j] = LOADER_IGNORE_INDEX;
				id++;
			}
		}
	}
}
