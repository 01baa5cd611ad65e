/* test_cuda_recompute.c: activation recomputation on the CUDA backend:
 * two training steps with dropout of BLOOM and Llama models on the device,
 * in f32 and through the bf16 cast view (each block's weights cast inside
 * the recomputed region), give every gradient and the loss with the same
 * bits under "block" and "selective" as under "none", and steps after the
 * first allocate nothing. Skipped without a GPU (or the emulator). */
#include <string.h>

#include "../base/alloc.h"
#include "../base/panic.h"
#include "harness.h"
#include "recompute_util.h"
#include "test_cuda_util.h"

#ifdef HUG_CUDA
#include "../autograd/cuda/cuda_api.h"

static void check_device(const char *family, enum dtype dt)
{
	struct model_config c;
	model_config_make(&c, model_family_find(family), &(struct model_sizes){ 80, 24, 2, 4 });
	HUG_ASSERT(model_config_set(&c, "attention_dropout", 0.1) == 0);
	if (!strcmp(family, "bloom"))
		HUG_ASSERT(model_config_set(&c, "hidden_dropout", 0.1) == 0);
	else
		HUG_ASSERT(model_config_set(&c, "num_key_value_heads", 2) == 0);
	struct model hm, dm;
	model_init(&hm, &c, DT_F32, false, NULL, NULL);
	model_init_weights(&hm, 3);
	model_to_device(&dm, &hm, hug_cuda_allocator(), true);
	const struct param_table *pt = model_params(&dm);
	struct recompute_result ref, got;
	REQUIRE(recompute_run_cast(&dm, pt, AG_RECOMPUTE_NONE, dt, 2, &ref) == 0);
	for (int k = 1; k < 3; k++) {
		REQUIRE(recompute_run_cast(&dm, pt, (enum ag_recompute)k, dt, 2, &got) == 0);
		const char *name;
		if (recompute_first_diff(pt, &ref, &got, &name) ||
		    memcmp(&ref.loss, &got.loss, sizeof(double)))
			test_fail_at(__FILE__, __LINE__, "%s %s, mode %d: %s differs from \"none\"",
				     family, dtype_name(dt), k, *name ? name : "the loss");
		CHECK(got.allocs_late == 0 && got.scratch_peak > 0);
		hug_free(got.grads);
	}
	hug_free(ref.grads);
	model_free(&dm);
	model_free(&hm);
}
#endif

TEST(cuda_recompute_gradients_bit_identical)
{
	CUDA_TEST_BEGIN();
#ifdef HUG_CUDA
	check_device("bloom", DT_F32);
	check_device("llama", DT_F32);
	check_device("bloom", DT_BF16);
	check_device("qwen3", DT_BF16);
#endif
}
