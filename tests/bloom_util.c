/* bloom_util.c: see bloom_util.h. */
#include "bloom_util.h"

#include <string.h>

int hf_bloom_load(const char *dir, enum dtype dt, bool trainable, struct bloom_model *m,
		  struct hug_error *err)
{
	struct model h;
	memset(m, 0, sizeof(*m));
	model_wrap(&h, &bloom_family, m);
	if (hf_model_load(dir, dt, trainable, &h, err)) {
		memset(m, 0, sizeof(*m));
		return -1;
	}
	return 0;
}

int hf_bloom_save(const struct bloom_model *m, const char *dir, enum dtype disk,
		  size_t max_shard_bytes, struct hug_error *err)
{
	return hf_model_save(BLOOM_M((struct bloom_model *)m), dir, disk, max_shard_bytes, err);
}

int hf_bloom_config_read(const char *path, struct bloom_config *cfg, struct hug_error *err)
{
	struct model_config mc;
	if (model_config_read(path, &mc, err))
		return -1;
	if (mc.family != &bloom_family)
		return hug_error_set(err, "%s: a %s config, expected bloom", path, mc.family->name);
	*cfg = *bloom_config_of(&mc);
	return 0;
}

int hf_bloom_config_write(const struct bloom_config *cfg, enum dtype weights_dtype,
			  const char *dir, struct hug_error *err)
{
	struct model_config mc;
	bloom_model_config(&mc, cfg);
	return model_config_write(&mc, weights_dtype, dir, err);
}

int bloom_generate(const struct bloom_model *m, const int32_t *prompt, int n_prompt,
		   const struct gen_opts *o, int32_t *out, struct hug_error *err)
{
	return model_generate(BLOOM_M((struct bloom_model *)m), prompt, n_prompt, o, out, err);
}
