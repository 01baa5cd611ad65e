/* fuzz_adapter_config.c: libFuzzer harness for the PEFT adapter_config.json
 * reader (peft/lora_config_json.c, lora_config_read): the input is the
 * file; a config that reads is also scaled, matched against one BLOOM
 * module path (its target_modules regex through Oniguruma) and freed. */
#include "../../peft/lora_config.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lora_config c;
	struct hug_error err = {0};
	if (lora_config_read(fuzz_file(data, size), &c, &err) == 0) {
		(void)lora_config_scale(&c);
		struct model_linear lin = { .layer = 0, .kind = 0, .module = "query_key_value",
					    .path = "transformer.h.0.self_attention.query_key_value" };
		(void)lora_config_selects(&c, &lin, NULL);
		lora_config_free(&c);
	}
	return 0;
}
