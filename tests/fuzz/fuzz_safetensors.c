/* fuzz_safetensors.c: libFuzzer harness for the safetensors reader
 * (io/safetensors.c): opens the input as a file and, when it validates,
 * touches every tensor's bytes and loads the small ones as f32. */
#include "../../io/safetensors.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_file f = {0};
	struct hug_error err = {0};
	if (st_open(&f, fuzz_file(data, size), &err) == 0) {
		for (int i = 0; i < f.n; i++) {
			const struct st_tensor *t = &f.tensors[i];
			char buf[128];
			st_tensor_describe(t, buf, sizeof buf);
			uint8_t sum = 0;
			for (size_t b = 0; b < t->nbytes; b++)
				sum += ((const uint8_t *)t->data)[b];
			volatile uint8_t sink = sum;
			(void)sink;
			(void)st_find(&f, t->name);
		}
		for (int i = 0; i < f.n_meta; i++)
			(void)st_meta_get(&f, f.meta_keys[i]);
	}
	st_close(&f);
	return 0;
}
