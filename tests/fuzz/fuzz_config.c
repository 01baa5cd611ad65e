/* fuzz_config.c: libFuzzer harness for the Hugging Face config.json reader
 * behind the model interface (nn/model.h, model_config_read: the family is
 * chosen from model_type/architectures, then its reader validates the rest):
 * the input is the file. */
#include "../../nn/model.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct model_config cfg;
	struct hug_error err = {0};
	(void)model_config_read(fuzz_file(data, size), &cfg, &err);
	return 0;
}
