/* bloom_util.h: BLOOM-typed conveniences over the model interface, for the
 * tests that look inside a BLOOM model (struct bloom_model's fields): a
 * Hugging Face directory loaded into or saved from a struct bloom_model,
 * its config.json as a struct bloom_config, generation, and a borrowed
 * struct model handle on a struct bloom_model. Production code uses
 * io/hf_checkpoint.h and nn/model.h instead. */
#ifndef HUG_TESTS_BLOOM_UTIL_H
#define HUG_TESTS_BLOOM_UTIL_H

#include "../io/hf_checkpoint.h"
#include "../nn/bloom.h"
#include "../nn/generate.h"

/* A borrowed struct model * on struct bloom_model *bm (lives to the end of
 * the enclosing block; lora_model keeps a copy of the handle). */
#define BLOOM_M(bm) (&(struct model){ .family = &bloom_family, .impl = (bm) })

/* hf_model_load into *m (zeroed first; left zeroed on error), which must
 * hold a BLOOM directory. */
int hf_bloom_load(const char *dir, enum dtype dt, bool trainable, struct bloom_model *m,
		  struct hug_error *err);
/* hf_model_save of *m. */
int hf_bloom_save(const struct bloom_model *m, const char *dir, enum dtype disk,
		  size_t max_shard_bytes, struct hug_error *err);
/* model_config_read, for a BLOOM config.json (another family is an error). */
int hf_bloom_config_read(const char *path, struct bloom_config *cfg, struct hug_error *err);
/* model_config_write of a BLOOM config. */
int hf_bloom_config_write(const struct bloom_config *cfg, enum dtype weights_dtype,
			  const char *dir, struct hug_error *err);
/* model_generate on *m. */
int bloom_generate(const struct bloom_model *m, const int32_t *prompt, int n_prompt,
		   const struct gen_opts *o, int32_t *out, struct hug_error *err);

#endif
