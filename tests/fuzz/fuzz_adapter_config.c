/* fuzz_adapter_config.c: libFuzzer harness for the PEFT adapter_config.json
 * reader (peft/lora_config_json.c, lora_config_read): the input is the
 * file; a config that reads is also scaled, matched against every linear
 * layer of a small model of the default family, and freed. */
#include "../../nn/model.h"
#include "../../peft/lora_config.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lora_config c;
	struct hug_error err = {0};
	if (lora_config_read(fuzz_file(data, size), &c, &err) == 0) {
		(void)lora_config_scale(&c);
		struct model_config mc;
		model_config_make(&mc, model_families[0],
				  &(struct model_sizes){ .vocab_size = 16, .hidden_size = 8,
							 .n_layer = 2, .n_head = 2 });
		for (int layer = 0; layer < mc.dims.n_layer; layer++)
			for (int k = 0; k < model_config_n_linear(&mc); k++) {
				struct model_linear lin;
				model_config_linear(&mc, layer, k, &lin);
				(void)lora_config_selects(&c, &lin, NULL);
			}
		lora_config_free(&c);
	}
	return 0;
}
