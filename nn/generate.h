/* generate.h: autoregressive generation with a BLOOM model over a KV cache
 * (each new token costs one forward over one position), and the sampler:
 * greedy, temperature, top-k, top-p, seeded. */
#ifndef HUG_NN_GENERATE_H
#define HUG_NN_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/error.h"
#include "bloom.h"

struct gen_opts {
	int max_new_tokens;   /* > 0 */
	bool greedy;          /* argmax; also when temperature == 0 */
	double temperature;   /* > 0 unless greedy */
	int top_k;            /* 0: off */
	double top_p;         /* 1: off; in (0, 1] */
	uint64_t seed;
	int32_t stop_id;      /* stop after emitting this id; -1: never */
};

/* Defaults: 32 new tokens, temperature 1, no top-k, top-p 1, seed 0,
 * sampling (not greedy), no stop id. */
struct gen_opts gen_opts_default(void);

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
int bloom_generate(const struct bloom_model *m, const int32_t *prompt, int n_prompt,
		   const struct gen_opts *o, int32_t *out, struct hug_error *err);

#endif
