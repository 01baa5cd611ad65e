/* generate.h: autoregressive generation with any model family over a KV cache
 * (each new token costs one forward over one position), and the sampler:
 * greedy, temperature, top-k, top-p, seeded. */
#ifndef HUG_NN_GENERATE_H
#define HUG_NN_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/error.h"
#include "model.h"

/* The most stop ids a generation takes. */
#define GEN_MAX_STOP 16

/* Wall-clock times of one model_generate call, in seconds. */
struct gen_timing {
	double first_token_s;  /* from the call to the first new id (the prompt pass) */
	double total_s;        /* the whole call */
	int n_new;             /* ids generated */
};

struct gen_opts {
	int max_new_tokens;   /* > 0 */
	bool greedy;          /* argmax; also when temperature == 0 */
	double temperature;   /* > 0 unless greedy */
	int top_k;            /* 0: off */
	double top_p;         /* 1: off; in (0, 1] */
	uint64_t seed;
	int32_t stop_ids[GEN_MAX_STOP]; /* stop after emitting any of these */
	int n_stop;           /* 0: never stop early */
	double max_memory;    /* bytes generation may need (gen_memory_estimate) */
	struct gen_timing *timing; /* NULL, or filled by model_generate */
};

/* The longest prompt + new tokens generation accepts, whatever the memory
 * bound (BLOOM's ALiBi sets no position limit of its own). */
#define GEN_MAX_POSITIONS (1 << 20)
/* Default of gen_opts.max_memory: 16 GiB. */
#define GEN_DEFAULT_MAX_MEMORY (16.0 * 1024 * 1024 * 1024)

/* Bytes (f32) that generating max_new ids after an n_prompt-id prompt
 * needs, estimated from the config: the KV cache (key/value heads only)
 * over every position, the prompt pass's attention scores (heads x
 * n_prompt^2), its activations and logits. Counted in double, so it never
 * overflows. */
double gen_memory_estimate(const struct model_config *cfg, int64_t n_prompt, int64_t max_new);

/* 0 when n_prompt + max_new is at most GEN_MAX_POSITIONS and its
 * gen_memory_estimate at most max_memory bytes; else -1 with err naming
 * the numbers and the flag to change. Called before anything is
 * allocated. */
int gen_check_size(const struct model_config *cfg, int64_t n_prompt, int64_t max_new,
		   double max_memory, struct hug_error *err);

/* Defaults: 32 new tokens, temperature 1, no top-k, top-p 1, seed 0,
 * sampling (not greedy), no stop id, GEN_DEFAULT_MAX_MEMORY. */
struct gen_opts gen_opts_default(void);

/* Adds id (>= 0) to o's stop set unless it is there already. 0, or -1
 * when the set is full (GEN_MAX_STOP) or id < 0. */
int gen_opts_add_stop(struct gen_opts *o, int32_t id);

/* Adds the model's end-of-sequence ids (config.json's eos_token_id, every
 * id of a list) to o's stop set; none when the model has none. */
void gen_opts_stop_at_eos(struct gen_opts *o, const struct model_dims *d);

/* Checks the options (names the bad one). 0 or -1. */
int gen_opts_validate(const struct gen_opts *o, struct hug_error *err);

/* Picks a token from logits[0..v) (any scale) as `o` says. The random draw
 * is a pure function of (o->seed, step). `work` is scratch of 2 v doubles
 * and v ints, from the caller so the loop allocates nothing per token. */
int32_t gen_sample(const double *logits, int64_t v, const struct gen_opts *o,
		   uint64_t step, double *work, int32_t *iwork);

/* Generates up to o->max_new_tokens ids after prompt[0..n_prompt) (ids in
 * the vocabulary, n_prompt >= 1) into out; returns how many were written,
 * or -1 with err. Runs with grad off on m's device (the KV cache and the
 * step there; each new token's logits row comes back to the host for
 * sampling). */
int model_generate(const struct model *m, const int32_t *prompt, int n_prompt,
		   const struct gen_opts *o, int32_t *out, struct hug_error *err);

#endif
