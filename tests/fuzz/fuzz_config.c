/* fuzz_config.c: libFuzzer harness for the Hugging Face config.json reader
 * (io/hf_checkpoint.c, hf_bloom_config_read): the input is the file. */
#include "../../io/hf_checkpoint.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bloom_config cfg;
	struct hug_error err = {0};
	(void)hf_bloom_config_read(fuzz_file(data, size), &cfg, &err);
	return 0;
}
