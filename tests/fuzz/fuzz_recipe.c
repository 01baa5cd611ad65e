/* fuzz_recipe.c: libFuzzer harness for recipe parsing and validation
 * (train/recipe.c): the input is the recipe's JSON text. */
#include "../../train/recipe.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	struct recipe r;
	struct hug_error err = {0};
	if (recipe_parse("fuzz.json", text, NULL, 0, 1, &r, &err) == 0)
		recipe_free(&r);
	free(text);
	return 0;
}
