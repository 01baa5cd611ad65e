/* test_peft_regex.c: a string target_modules read as PEFT reads it, a
 * Python regular expression matched with re.fullmatch. The expected
 * results were printed by Python's re module (3.11) for these patterns
 * and BLOOM module paths; the patterns of issue 17, which hug's old
 * POSIX reading refused or matched nowhere, are among them. */
#include <string.h>

#include "../peft/lora_config.h"
#include "../peft/lora_internal.h"
#include "harness.h"

TEST(peft_target_regex_is_python_fullmatch)
{
	static const char *const paths[] = {
		"transformer.h.0.self_attention.query_key_value",
		"transformer.h.11.self_attention.dense",
		"transformer.h.2.mlp.dense_h_to_4h",
		"transformer.h.2.mlp.dense_4h_to_h",
	};
	/* pattern, then re.fullmatch on each path (1: matches) */
	static const char *const cases[][2] = {
		{ "transformer\\.h\\.\\d+\\.self_attention\\.(query_key_value|dense)", "1100" },
		{ ".*\\.(?:dense|query_key_value)", "1100" },
		{ "transformer\\.h\\.(?P<n>[0-9]+)\\.mlp\\..*", "0011" },
		{ ".*?h\\.1\\d*\\..*", "0100" },
		{ "(?i)TRANSFORMER\\.H\\.0\\..*", "1000" },
		{ ".*dense", "0100" },
		{ "dense", "0000" },
		{ "(?x) .*mlp .*  # verbose", "0011" },
		{ "transformer\\.h\\.2\\.mlp\\.dense_(h_to_4h|4h_to_h)$", "0011" },
		{ ".*(query|dense)", "0100" },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		char msg[256] = "";
		struct lora_regex *re = lora_regex_new(cases[k][0], msg, sizeof(msg));
		CHECK(re != NULL);
		if (!re) {
			test_fail_at(__FILE__, __LINE__, "%s: %s", cases[k][0], msg);
			continue;
		}
		for (int i = 0; i < 4; i++)
			if (lora_regex_full_match(re, paths[i]) != (cases[k][1][i] == '1'))
				test_fail_at(__FILE__, __LINE__, "%s on %s: expected %c", cases[k][0],
					     paths[i], cases[k][1][i]);
		lora_regex_free(re);
	}
	/* what Python's re.compile refuses */
	static const char *const bad[] = { "a**", "(?:a", "a{2}{3}", "a+?+", "[a-" };
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		char msg[256] = "";
		struct lora_regex *re = lora_regex_new(bad[k], msg, sizeof(msg));
		CHECK(re == NULL && msg[0]);
		lora_regex_free(re);
	}
	/* the message names the file it came from */
	struct lora_config c;
	struct hug_error err = { 0 };
	lora_config_init(&c);
	lora_config_set_regex(&c, "(?:a");
	CHECK(lora_config_validate(&c, "adapter/adapter_config.json: ", &err) == -1);
	CHECK(strstr(err.msg, "adapter/adapter_config.json: target_modules: \"(?:a\" is not a "
			      "regular expression (Python syntax") != NULL);
	lora_config_free(&c);
}
