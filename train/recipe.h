/* recipe.h: JSON training recipes: parsed with cJSON into a validated
 * struct. Every error names the file, the key path and what was expected
 * ("r.json: optim.lr: expected a number > 0, got \"fast\""); unknown keys are
 * errors with a "did you mean" for near misses; `--set key.path=value`
 * overrides apply before validation. docs/recipes.md documents every key;
 * the key names are a user-facing contract. */
#ifndef HUG_TRAIN_RECIPE_H
#define HUG_TRAIN_RECIPE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../base/error.h"
#include "../nn/model.h"
#include "../optim/optimizer.h"
#include "../optim/schedule.h"

struct recipe_source {
	char *path;        /* a glob of shard files */
	double weight;     /* > 0; train blends only */
};

enum precision {
	PRECISION_F32,
	PRECISION_BF16,
};

struct recipe_peft {
	bool enabled;              /* "peft" is an object, not null */
	int r;                     /* rank > 0 */
	double alpha;              /* scale alpha / r (alpha / sqrt(r) with rslora) */
	double dropout;            /* on the adapter input */
	bool rslora;
	char **target_modules;     /* n_targets names or fnmatch patterns */
	int n_targets;
};

struct recipe {
	char *path;                      /* the recipe file, for messages */
	/* model */
	char *from_pretrained;           /* a HF directory, or NULL */
	struct model_config model;       /* model.arch and sizes, or that directory's config.json */
	int64_t max_seq_len;             /* longest sequence the model is meant for */
	/* data */
	struct recipe_source *train;
	int n_train;
	struct recipe_source *valid;     /* NULL: hold out valid_fraction of train */
	int n_valid;
	double valid_fraction;
	int64_t seq_len;
	bool pack_documents;             /* data.packing "document" */
	char *tokenizer;                 /* tokenizer.json or NULL */
	char *sample_tokenizer;          /* the samples': data.tokenizer, else
					  * model.from_pretrained's tokenizer.json;
					  * NULL without samples or without either */
	/* optimisation */
	struct optim_config optim;
	double grad_clip;                /* 0: off */
	char **no_decay;                 /* fnmatch patterns; NULL: the model's defaults */
	int n_no_decay;
	struct lr_schedule schedule;
	struct batch_rampup rampup;      /* final = global batch */
	int64_t micro_batch_size;
	int64_t global_batch_size;
	int64_t accumulation;            /* global / (micro * data-parallel ranks) */
	/* execution */
	enum device device;
	enum precision precision;
	int tensor_parallel;             /* parallel.tensor */
	int zero;                        /* parallel.zero: 0-3 */
	int pipeline_parallel;           /* parallel.pipeline: stages (1: none) */
	int *pipeline_layers;            /* parallel.pipeline_layers: blocks per stage; NULL: balanced */
	int n_pipeline_layers;
	struct recipe_peft peft;
	/* the run */
	int64_t steps;                   /* total optimizer steps */
	int64_t log_every, eval_every, eval_batches, save_every, keep_last;
	char *out_dir;
	uint64_t seed;
	bool skip_nonfinite;             /* skip a step with a non-finite loss or gradient */
	bool tensorboard;                /* train.tensorboard: event files in out_dir */
	enum ag_recompute recompute;     /* train.activation_checkpointing */
	int64_t max_skipped_steps;       /* stop after this many consecutive skips (>= 1) */
	double peak_tflops;              /* 0: unknown (no MFU) */
	int64_t sample_tokens;           /* tokens generated per prompt at the end (0: none) */
	char **sample_prompts;
	int n_sample_prompts;
	char *json;                      /* the effective recipe, pretty-printed */
};

/* Reads and validates `path`, applying overrides[0..n_overrides) of the
 * form "key.path=value" (value parsed as JSON when it is valid JSON, else
 * taken as a string). `world` is the number of processes, used for the
 * batch divisibility check. 0, or -1 with err (recipe left freed). */
int recipe_load(const char *path, const char *const *overrides, int n_overrides,
		int world, struct recipe *r, struct hug_error *err);

/* As recipe_load, from JSON text; `name` labels messages. */
int recipe_parse(const char *name, const char *text, const char *const *overrides,
		 int n_overrides, int world, struct recipe *r, struct hug_error *err);

void recipe_free(struct recipe *r);

struct lora_config;

/* The LoRA settings of r's peft object (r->peft.enabled) as a PEFT
 * config, base model r->from_pretrained; free with lora_config_free. */
void recipe_lora_config(const struct recipe *r, struct lora_config *lc);

/* The effective recipe as pretty-printed JSON (hug_free it): r->json with
 * every key the recipe leaves out that has a default filled in with it
 * (train/recipe_schema.c), model.arch with the family in use, and the
 * model settings that do not apply (another family's, or those a
 * model.from_pretrained config.json gives) left out. Itself a valid
 * recipe that gives the same run. */
char *recipe_effective_json(const struct recipe *r);

/* Writes docs for every key (path, type, default, meaning) as Markdown. */
void recipe_write_docs(FILE *out);

#endif
