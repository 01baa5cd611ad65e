/* model_families.c: the table of model families. A new family is its
 * files under nn/ and one line here (docs/architecture.md, "Adding a model
 * family"). The first line is the default family. */
#include "bloom.h"
#include "llama.h"
#include "model.h"

const struct model_family *const model_families[] = {
	&bloom_family,
	&llama_family,
	&qwen2_family,
	&qwen3_family,
	&mistral_family,
	NULL,
};
