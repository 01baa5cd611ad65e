/* rope.c: rotary embeddings' settings from config.json (both spellings),
 * their validation and JSON text, and the inverse frequencies of the rope
 * types hug supports, in float32 as transformers computes them. */
#include "rope.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../base/json.h"

static const char *const type_names[] = {
	[ROPE_DEFAULT] = "default", [ROPE_LINEAR] = "linear", [ROPE_LLAMA3] = "llama3",
};

const char *rope_type_name(enum rope_type t)
{
	return type_names[t];
}

int rope_params_validate(const struct rope_params *p, const char *what,
			 struct hug_error *err)
{
	const char *t = rope_type_name(p->type);
	if (!(p->theta > 0) || !isfinite(p->theta))
		return hug_error_set(err, "%s: rope_theta: expected > 0, got %g", what, p->theta);
	if (p->type == ROPE_DEFAULT)
		return 0;
	if (!(p->factor >= 1) || !isfinite(p->factor))
		return hug_error_set(err, "%s: rope %s: factor: expected >= 1, got %g", what, t,
				     p->factor);
	if (p->type != ROPE_LLAMA3)
		return 0;
	if (!(p->low_freq_factor > 0) || !(p->high_freq_factor > p->low_freq_factor) ||
	    !isfinite(p->high_freq_factor))
		return hug_error_set(err, "%s: rope llama3: expected 0 < low_freq_factor < "
				     "high_freq_factor, got %g and %g", what, p->low_freq_factor,
				     p->high_freq_factor);
	if (p->original_max_position_embeddings <= 0)
		return hug_error_set(err, "%s: rope llama3: original_max_position_embeddings: "
				     "expected > 0, got %" PRId64, what,
				     p->original_max_position_embeddings);
	return 0;
}

/* The type and its keys from object `o` (at names it), theta already set. */
static int read_scaling(const struct json_at *at, const cJSON *o, bool legacy,
			struct rope_params *p, struct hug_error *err)
{
	const char *type = NULL;
	if (hug_json_get_string(at, o, "rope_type", false, &type, err))
		return -1;
	if (!type && legacy && hug_json_get_string(at, o, "type", false, &type, err))
		return -1;
	if (!type)
		return hug_json_expected(at, "rope_type", "\"default\", \"linear\" or \"llama3\"",
					 NULL, err);
	if (!strcmp(type, "default"))
		p->type = ROPE_DEFAULT;
	else if (!strcmp(type, "linear"))
		p->type = ROPE_LINEAR;
	else if (!strcmp(type, "llama3"))
		p->type = ROPE_LLAMA3;
	else
		return hug_error_set(err, "%s: %s.rope_type: \"%s\" is not supported (hug supports "
				     "\"default\", \"linear\" and \"llama3\")", at->file, at->path,
				     type);
	int64_t orig = 0;
	if (p->type != ROPE_DEFAULT &&
	    hug_json_get_number(at, o, "factor", true, &p->factor, err))
		return -1;
	if (p->type == ROPE_LLAMA3 &&
	    (hug_json_get_number(at, o, "low_freq_factor", true, &p->low_freq_factor, err) ||
	     hug_json_get_number(at, o, "high_freq_factor", true, &p->high_freq_factor, err) ||
	     hug_json_get_int(at, o, "original_max_position_embeddings", 1, INT32_MAX, true,
			      &orig, err)))
		return -1;
	p->original_max_position_embeddings = orig;
	return 0;
}

int rope_params_from_json(const char *file, const cJSON *root, double default_theta,
			  struct rope_params *out, struct hug_error *err)
{
	const struct json_at top = { file, NULL };
	const cJSON *params, *scaling;
	struct rope_params p = { .type = ROPE_DEFAULT, .theta = default_theta, .factor = 1 };
	if (hug_json_member(&top, root, "rope_parameters", &params, err) ||
	    hug_json_member(&top, root, "rope_scaling", &scaling, err))
		return -1;
	if (params && !cJSON_IsNull(params)) {
		const struct json_at at = { file, "rope_parameters" };
		if (!cJSON_IsObject(params))
			return hug_json_expected(&top, "rope_parameters", "an object", params, err);
		if (hug_json_get_number(&at, params, "rope_theta", false, &p.theta, err) ||
		    read_scaling(&at, params, false, &p, err))
			return -1;
	} else {
		if (hug_json_get_number(&top, root, "rope_theta", false, &p.theta, err))
			return -1;
		if (scaling && !cJSON_IsNull(scaling)) {
			const struct json_at at = { file, "rope_scaling" };
			if (!cJSON_IsObject(scaling))
				return hug_json_expected(&top, "rope_scaling", "an object or null",
							 scaling, err);
			if (read_scaling(&at, scaling, true, &p, err))
				return -1;
		}
	}
	/* a partial rotation (partial_rotary_factor < 1) is not implemented */
	const cJSON *holders[2] = { root, params && cJSON_IsObject(params) ? params : NULL };
	for (int i = 0; i < 2; i++) {
		double prf = 1.0;
		const struct json_at at = { file, i ? "rope_parameters" : NULL };
		if (holders[i] && hug_json_get_number(&at, holders[i], "partial_rotary_factor", false,
						      &prf, err))
			return -1;
		if (prf != 1.0)
			return hug_error_set(err, "%s: %spartial_rotary_factor: %g is not supported "
					     "(hug rotates the whole head; expected 1.0)", file,
					     i ? "rope_parameters." : "", prf);
	}
	if (rope_params_validate(&p, file, err))
		return -1;
	*out = p;
	return 0;
}

void rope_params_json(const struct rope_params *p, char *buf, size_t n)
{
	char theta[40], f[40], lo[40], hi[40];
	hug_json_double(p->theta, theta, sizeof(theta));
	hug_json_double(p->factor, f, sizeof(f));
	hug_json_double(p->low_freq_factor, lo, sizeof(lo));
	hug_json_double(p->high_freq_factor, hi, sizeof(hi));
	switch (p->type) {
	case ROPE_DEFAULT:
		snprintf(buf, n, "{\n    \"rope_theta\": %s,\n    \"rope_type\": \"default\"\n  }",
			 theta);
		break;
	case ROPE_LINEAR:
		snprintf(buf, n, "{\n    \"factor\": %s,\n    \"rope_theta\": %s,\n"
			 "    \"rope_type\": \"linear\"\n  }", f, theta);
		break;
	case ROPE_LLAMA3:
		snprintf(buf, n, "{\n    \"factor\": %s,\n    \"high_freq_factor\": %s,\n"
			 "    \"low_freq_factor\": %s,\n    \"original_max_position_embeddings\": %"
			 PRId64 ",\n    \"rope_theta\": %s,\n    \"rope_type\": \"llama3\"\n  }",
			 f, hi, lo, p->original_max_position_embeddings, theta);
		break;
	}
}

/* Each step below is one float32 operation of transformers' code, in its
 * order: 1.0 / (base ** (arange(0, D, 2).float() / D)), then the scaling.
 * volatile keeps every intermediate a float (no wider evaluation, no
 * contraction). */
void rope_inv_freq(const struct rope_params *p, int64_t head_dim, double *out)
{
	int64_t half = head_dim / 2;
	const float base = (float)p->theta, factor = (float)p->factor;
	for (int64_t i = 0; i < half; i++) {
		volatile float e = (float)(2 * i) / (float)head_dim;
		volatile float pw = (float)pow((double)base, (double)e);
		volatile float inv = 1.0f / pw;
		if (p->type == ROPE_LINEAR)
			inv = inv / factor;
		else if (p->type == ROPE_LLAMA3) {
			const float old = (float)p->original_max_position_embeddings;
			const float lo = (float)p->low_freq_factor, hi = (float)p->high_freq_factor;
			const float low_wavelen = (float)((double)p->original_max_position_embeddings /
							  p->low_freq_factor);
			const float high_wavelen = (float)((double)p->original_max_position_embeddings /
							   p->high_freq_factor);
			/* 2 pi / inv_freq is computed as reciprocal(inv_freq) * 2 pi */
			volatile float recip = 1.0f / inv;
			volatile float wavelen = recip * (float)(2.0 * M_PI);
			volatile float scaled = wavelen > low_wavelen ? inv / factor : inv;
			volatile float r2 = 1.0f / wavelen;
			volatile float ratio = r2 * old;
			volatile float num = ratio - lo;
			volatile float smooth = num / (float)(p->high_freq_factor - p->low_freq_factor);
			volatile float a = 1.0f - smooth;
			volatile float b = a * scaled;
			volatile float c = b / factor;
			volatile float d = smooth * scaled;
			volatile float smoothed = c + d;
			bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
			(void)hi;
			inv = medium ? smoothed : scaled;
		}
		out[i] = (double)inv;
	}
}
