/* lora_io.h: LoRA adapters in Hugging Face PEFT's directory layout:
 *   adapter_config.json         the settings (lora_config.h)
 *   adapter_model.safetensors   "base_model.model.transformer.h.<i>.<path>.lora_A.weight"
 *                               (r, in) and ".lora_B.weight" (out, r)
 * which PeftModel.from_pretrained loads as it is, and which hug loads from
 * PEFT: every tensor is checked against the base model before anything is
 * copied, and errors name the file and the key. */
#ifndef HUG_PEFT_LORA_IO_H
#define HUG_PEFT_LORA_IO_H

#include <stdbool.h>

#include "../autograd/dtype.h"
#include "../base/error.h"
#include "lora_model.h"

/* True when dir holds an adapter_config.json. */
bool lora_dir_has_adapter(const char *dir);

/* Writes adapter_config.json (lm's config; target_modules from
 * lora_model_target_names) and adapter_model.safetensors (every A and B as
 * `disk`: f32, bf16 or f16) into dir, which must exist; each file
 * atomically. Merged adapters are saved as they are (A and B). 0 or -1. */
int lora_save(const struct lora_model *lm, const char *dir, enum dtype disk,
	      struct hug_error *err);

/* Reads dir/adapter_config.json, attaches its adapters to base
 * (lora_model_init, with gradients when `trainable`) and fills them from
 * dir/adapter_model.safetensors (lora_load_weights). When dir holds a
 * trainer_state.json with checksums (an adapter checkpoint hug wrote) the
 * files are verified first (dir_checksums_check). 0, or -1 with err and
 * lm zeroed, base untouched. */
int lora_load(struct lora_model *lm, const struct model *base, const char *dir,
	      bool trainable, struct hug_error *err);

/* Fills the adapters of lm from dir/adapter_model.safetensors: the file
 * must hold exactly lm's tensors (keys with or without "transformer.",
 * float dtypes converted) with lm's shapes. A tensor for a layer or module
 * the base lacks, or of another shape, is reported as an adapter made for
 * another base model. Everything is checked before anything is copied.
 * 0 or -1. */
int lora_load_weights(struct lora_model *lm, const char *dir, struct hug_error *err);

#endif
