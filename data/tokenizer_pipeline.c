/* tokenizer_pipeline.c: the parts of tokenizer.json around the model:
 * pre_tokenizer (turned into a list of steps), decoder and post_processor
 * (checked: hug implements ByteLevel decoding and never adds template
 * tokens while encoding). */
#include <stdio.h>
#include <string.h>

#include "../base/json.h"
#include "tokenizer_impl.h"

static const char BLOOM_REGEX[] = " ?[^(\\s|[.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c"
				  "\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c])]+";
static const char GPT2_REGEX[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+"
				 "|\\s+(?!\\S)|\\s+";

const char *tok_bloom_regex(void)
{
	return BLOOM_REGEX;
}

struct pipe {
	const char *name;
	struct hug_error *err;
	struct tokenizer *t;
};

static int bad(struct pipe *P, const char *path, const char *expected)
{
	return hug_error_set(P->err, "%s: %s: expected %s", P->name, path, expected);
}

static int refuse(struct pipe *P, const char *path, const char *what, const char *supported)
{
	return hug_error_set(P->err, "%s: %s: %s is not supported (hug supports %s)",
			     P->name, path, what, supported);
}

static const char *type_of(const cJSON *obj)
{
	const cJSON *ty = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, "type") : NULL;
	return cJSON_IsString(ty) ? ty->valuestring : NULL;
}

/* An optional boolean member of the object at `path`. */
static int opt_bool(struct pipe *P, const cJSON *obj, const char *key, const char *path,
		    bool *out)
{
	return hug_json_get_bool(&(struct json_at){ P->name, path }, obj, key, false, out, P->err);
}

/* Calls one() on each entry of the array `key` of a Sequence object at
 * `path` (naming entries "<path>.<key>[i]"). 0 or -1. */
static int each_in_sequence(struct pipe *P, const cJSON *o, const char *path, const char *key,
			    int (*one)(struct pipe *, const cJSON *, const char *, bool))
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, key), *e;
	char p[160];
	int i = 0;
	if (!cJSON_IsArray(list)) {
		snprintf(p, sizeof(p), "%s.%s", path, key);
		return bad(P, p, "an array");
	}
	cJSON_ArrayForEach(e, list) {
		snprintf(p, sizeof(p), "%s.%s[%d]", path, key, i++);
		if (one(P, e, p, false))
			return -1;
	}
	return 0;
}

static int add_step(struct pipe *P, const char *path, struct tok_step s)
{
	if (P->t->n_steps == TOK_MAX_STEPS)
		return refuse(P, path, "a pre_tokenizer Sequence this long", "8 steps");
	P->t->steps[P->t->n_steps++] = s;
	return 0;
}

static int split_step(struct pipe *P, const cJSON *o, const char *path)
{
	char p[160];
	const cJSON *pat = cJSON_GetObjectItemCaseSensitive(o, "pattern");
	const cJSON *re = cJSON_IsObject(pat) ? cJSON_GetObjectItemCaseSensitive(pat, "Regex") : NULL;
	const cJSON *beh = cJSON_GetObjectItemCaseSensitive(o, "behavior");
	bool invert = false;
	snprintf(p, sizeof(p), "%s.pattern.Regex", path);
	if (!cJSON_IsString(re)) {
		snprintf(p, sizeof(p), "%s.pattern", path);
		return refuse(P, p, "a Split pattern other than a Regex", "{\"Regex\": ...}");
	}
	struct tok_step s = { .kind = STEP_SPLIT_BLOOM };
	if (!strcmp(re->valuestring, GPT2_REGEX))
		s.kind = STEP_SPLIT_GPT2;
	else if (strcmp(re->valuestring, BLOOM_REGEX)) {
		char what[200];
		snprintf(what, sizeof(what), "the regex \"%.120s\"", re->valuestring);
		return refuse(P, p, what, "BLOOM's and GPT-2's regexes");
	}
	snprintf(p, sizeof(p), "%s.behavior", path);
	if (!cJSON_IsString(beh))
		return bad(P, p, "a string");
	if (strcmp(beh->valuestring, "Isolated")) {
		char what[120];
		snprintf(what, sizeof(what), "behavior \"%.60s\"", beh->valuestring);
		return refuse(P, p, what, "\"Isolated\"");
	}
	if (opt_bool(P, o, "invert", path, &invert))
		return -1;
	if (invert) {
		snprintf(p, sizeof(p), "%s.invert", path);
		return refuse(P, p, "true", "false");
	}
	return add_step(P, path, s);
}

static int bytelevel_step(struct pipe *P, const cJSON *o, const char *path)
{
	struct tok_step s = { .kind = STEP_BYTELEVEL, .add_prefix_space = true, .use_regex = true };
	if (opt_bool(P, o, "add_prefix_space", path, &s.add_prefix_space) ||
	    opt_bool(P, o, "use_regex", path, &s.use_regex))
		return -1;
	return add_step(P, path, s);
}

static int pretok_one(struct pipe *P, const cJSON *o, const char *path, bool top)
{
	const char *ty = type_of(o);
	char p[160];
	snprintf(p, sizeof(p), "%s.type", path);
	if (!ty)
		return bad(P, path, "an object with a string \"type\"");
	if (!strcmp(ty, "ByteLevel"))
		return bytelevel_step(P, o, path);
	if (!strcmp(ty, "Split"))
		return split_step(P, o, path);
	if (top && !strcmp(ty, "Sequence"))
		return each_in_sequence(P, o, path, "pretokenizers", pretok_one);
	char what[160];
	snprintf(what, sizeof(what), "pre-tokenizer \"%.100s\"", ty);
	return refuse(P, p, what, "ByteLevel, Split and a Sequence of them");
}

static int load_pretok(struct pipe *P, const cJSON *root)
{
	const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
	if (!pt || cJSON_IsNull(pt))
		return refuse(P, "pre_tokenizer", "null", "ByteLevel (byte-level BPE)");
	if (pretok_one(P, pt, "pre_tokenizer", true))
		return -1;
	struct tokenizer *t = P->t;
	for (int i = 0; i < t->n_steps; i++) {
		bool last = i == t->n_steps - 1;
		if ((t->steps[i].kind == STEP_BYTELEVEL) != last)
			return hug_error_set(P->err, "%s: pre_tokenizer: expected exactly one "
					     "ByteLevel step, last (hug implements byte-level "
					     "BPE only)", P->name);
	}
	if (t->n_steps == 0)
		return hug_error_set(P->err, "%s: pre_tokenizer: expected a ByteLevel step",
				     P->name);
	return 0;
}

static int load_decoder(struct pipe *P, const cJSON *root)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "decoder");
	if (!d || cJSON_IsNull(d))
		return 0;
	const char *ty = type_of(d);
	if (!ty)
		return bad(P, "decoder", "an object with a string \"type\"");
	if (!strcmp(ty, "ByteLevel"))
		return 0;
	char what[160];
	snprintf(what, sizeof(what), "decoder \"%.100s\"", ty);
	return refuse(P, "decoder.type", what, "ByteLevel or null");
}

static int post_one(struct pipe *P, const cJSON *o, const char *path, bool top)
{
	const char *ty = type_of(o);
	char p[160];
	if (!ty)
		return bad(P, path, "an object with a string \"type\"");
	if (!strcmp(ty, "ByteLevel") || !strcmp(ty, "TemplateProcessing"))
		return 0;
	if (top && !strcmp(ty, "Sequence"))
		return each_in_sequence(P, o, path, "processors", post_one);
	char what[160];
	snprintf(p, sizeof(p), "%s.type", path);
	snprintf(what, sizeof(what), "post-processor \"%.100s\"", ty);
	return refuse(P, p, what, "ByteLevel, TemplateProcessing, a Sequence of them, or null");
}

int tok_load_pipeline(const struct cJSON *root, const char *name, struct tokenizer *t,
		      struct hug_error *err)
{
	struct pipe P = { name, err, t };
	const cJSON *post = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
	if (load_pretok(&P, root) || load_decoder(&P, root))
		return -1;
	if (post && !cJSON_IsNull(post) && post_one(&P, post, "post_processor", true))
		return -1;
	return 0;
}
