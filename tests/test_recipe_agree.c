/* test_recipe_agree.c: the canonical recipe text and the first differing
 * key that `hug train` names when ranks disagree (train/recipe_agree.h;
 * the mpirun side is in test_mpi_setup.c). */
#include <string.h>

#include "../base/alloc.h"
#include "../train/recipe_agree.h"
#include "harness.h"

TEST(recipe_canonical_ignores_key_order_and_space)
{
	char *a = recipe_canonical("{\"train\": {\"steps\": 4, \"log_every\": 1}, \"model\": {}}", false);
	char *b = recipe_canonical("{\"model\":{},\"train\":{\"log_every\":1,\"steps\":4}}", false);
	char *c = recipe_canonical("{\"model\":{},\"train\":{\"log_every\":1,\"steps\":4}}", true);
	REQUIRE(a && b && c);
	CHECK(strcmp(a, b) == 0);
	CHECK(strcmp(a, "{\"model\":{},\"train\":{\"log_every\":1,\"steps\":4}}") == 0);
	CHECK(strcmp(a, c) != 0 && strstr(c, "\"--resume\":true"));
	CHECK(recipe_canonical("not json", false) == NULL);
	hug_free(a);
	hug_free(b);
	hug_free(c);
}

TEST(recipe_first_difference_names_key_and_values)
{
	char path[128], va[64], vb[64];
	const char *r0 = "{\"data\":{\"train\":[{\"path\":\"a/*.h5\"}]},\"train\":{\"steps\":4}}";
	CHECK(recipe_first_difference(r0, r0, path, sizeof(path), va, vb, sizeof(va)) == 0);
	CHECK(recipe_first_difference(r0, "{\"data\":{\"train\":[{\"path\":\"a/*.h5\"}]},"
				      "\"train\":{\"steps\":3}}", path, sizeof(path), va, vb,
				      sizeof(va)) == 1);
	CHECK(strcmp(path, "train.steps") == 0 && strcmp(va, "4") == 0 && strcmp(vb, "3") == 0);
	CHECK(recipe_first_difference(r0, "{\"data\":{\"train\":[{\"path\":\"b/*.h5\"}]},"
				      "\"train\":{\"steps\":3}}", path, sizeof(path), va, vb,
				      sizeof(va)) == 1);
	CHECK(strcmp(path, "data.train[0].path") == 0 && strcmp(va, "\"a/*.h5\"") == 0);
	/* a key only one side has */
	CHECK(recipe_first_difference(r0, "{\"data\":{\"train\":[{\"path\":\"a/*.h5\"}]},"
				      "\"seed\":1,\"train\":{\"steps\":4}}", path, sizeof(path), va,
				      vb, sizeof(va)) == 1);
	CHECK(strcmp(path, "seed") == 0 && strcmp(va, "(absent)") == 0 && strcmp(vb, "1") == 0);
	CHECK(recipe_first_difference(r0, "[", path, sizeof(path), va, vb, sizeof(va)) == -1);
}
