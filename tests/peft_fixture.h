/* peft_fixture.h: shared set-up of the LoRA tests (tests/test_peft*.c): a
 * tiny base of any family (through nn/model.h) loaded with an adapter
 * directory, reference tensors read
 * from a safetensors file, and max-error comparisons. */
#ifndef HUG_TESTS_PEFT_FIXTURE_H
#define HUG_TESTS_PEFT_FIXTURE_H

#include <stdbool.h>

#include "../autograd/autograd.h"
#include "../io/safetensors.h"
#include "../nn/model.h"
#include "../peft/lora_io.h"

/* The PEFT-made fixtures (tools/ref/make_peft_fixtures.py): BLOOM's and
 * the families' after it. */
struct peft_fixture {
	const char *adapter;   /* tests/fixtures/peft/<name> */
	const char *base;      /* tests/fixtures/<model>: bloom-tiny-a, llama-tiny-a, ... */
};
extern const struct peft_fixture peft_fixtures[];
extern const int n_peft_fixtures;

/* A base model with an adapter, reference file, inputs and a step arena. */
struct peft_run {
	struct model m;          /* the base, owned */
	struct lora_model lm;
	bool have_model, have_lora;
	struct st_file ref;
	struct arena mem;       /* reference tensors */
	struct arena step;
	struct ag_ctx ctx;
	struct tensor *ids, *mask, *labels;
};

/* Loads base (dtype dt, frozen) and the adapter in dir (trainable), opens
 * dir/reference.safetensors and reads the batch. false after recording a
 * test failure; peft_run_free either way. */
bool peft_run_open(struct peft_run *r, const struct peft_fixture *f, enum dtype dt);
void peft_run_free(struct peft_run *r);

/* Reference tensor `key` as dtype dt, or NULL after a test failure. */
struct tensor *peft_ref(struct peft_run *r, const char *key, enum dtype dt);

/* max|a - b| / max|b| over tensors of the same shape (-1 and a test
 * failure when shapes differ); with keep (B, T) i32 and 3-d tensors only
 * rows with keep != 0 count. */
double peft_relerr(const struct tensor *a, const struct tensor *b, const struct tensor *keep);
/* max|a - b|. */
double peft_maxabs(const struct tensor *a, const struct tensor *b);

/* A LoRA training set-up under a new /tmp/hug-train-* directory (remove
 * with train_fixture_rmtree): the counting shards (tests/train_fixture.h),
 * DIR/base (a tiny random BLOOM: vocab 64, hidden 32, 2 layers, 4 heads,
 * saved as a Hugging Face directory) and DIR/recipe.json that fine-tunes
 * it with `peft` (a JSON object, or "null") for `steps` steps into
 * DIR/run, with `train_extra` appended to the "train" object. Returns the
 * directory (static storage) or NULL. */
const char *peft_train_setup(const char *peft, int steps, const char *train_extra);

#endif
