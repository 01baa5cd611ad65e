/* rope.h: rotary position embeddings' settings (config.json's
 * rope_parameters, or rope_theta + rope_scaling) and their inverse
 * frequencies, computed as transformers computes them (in float32) for the
 * rope types hug supports: default, linear and llama3. The rotation itself
 * is the op ag_rope. */
#ifndef HUG_NN_ROPE_H
#define HUG_NN_ROPE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "../base/error.h"

enum rope_type {
	ROPE_DEFAULT,   /* theta^(-2i/D) */
	ROPE_LINEAR,    /* the default divided by factor (position interpolation) */
	ROPE_LLAMA3,    /* Llama 3.1's frequency-dependent scaling */
};

struct rope_params {
	enum rope_type type;
	double theta;                    /* rope_theta */
	double factor;                   /* linear, llama3 */
	double low_freq_factor;          /* llama3 */
	double high_freq_factor;         /* llama3 */
	int64_t original_max_position_embeddings; /* llama3 */
};

/* "default", "linear", "llama3". */
const char *rope_type_name(enum rope_type t);

/* The rope settings of a config.json object `root` (file names it in
 * messages): "rope_parameters" {rope_type, rope_theta, ...} (transformers
 * 5), or top-level "rope_theta" with "rope_scaling" {rope_type (or "type"),
 * factor, ...} or null (the published checkpoints). theta defaults to
 * `default_theta` when absent. Another rope type is refused naming the
 * file, the key and the supported values; each type's keys are required
 * and checked (factor >= 1, ...). 0 or -1. */
int rope_params_from_json(const char *file, const cJSON *root, double default_theta,
			  struct rope_params *out, struct hug_error *err);

/* Checks the values (theta > 0, factor >= 1, llama3's factors and length
 * positive, high_freq_factor > low_freq_factor); `what` prefixes messages.
 * 0 or -1. */
int rope_params_validate(const struct rope_params *p, const char *what,
			 struct hug_error *err);

/* The JSON text of the rope_parameters object as transformers 5 writes it
 * (keys sorted, nested at 2 spaces), into buf[n]. */
void rope_params_json(const struct rope_params *p, char *buf, size_t n);

/* The D/2 inverse frequencies for head_dim D (even), as transformers'
 * rope init functions compute them in float32 (then widened to double). */
void rope_inv_freq(const struct rope_params *p, int64_t head_dim, double *out);

#endif
