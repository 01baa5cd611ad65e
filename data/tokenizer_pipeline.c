/* tokenizer_pipeline.c: the parts of tokenizer.json around the model:
 * pre_tokenizer (turned into a flat list of steps: Split, Metaspace,
 * ByteLevel; Digits, Punctuation, Whitespace and WhitespaceSplit become
 * Splits by an equivalent regex), post_processor (TemplateProcessing's
 * single-sequence ids), and the String/Regex pattern objects. */
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/json.h"
#include "utf8.h"
#include "tokenizer_impl.h"

static const char BLOOM_REGEX[] = " ?[^(\\s|[.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c"
				  "\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c])]+";
static const char GPT2_REGEX[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+"
				 "|\\s+(?!\\S)|\\s+";

const char *tok_bloom_regex(void)
{
	return BLOOM_REGEX;
}

#define pipe tok_pipe

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
	if (P->t->n_steps == TOK_MAX_STEPS) {
		tok_regex_free(s.re);
		return refuse(P, path, "a pre_tokenizer Sequence this long", "16 steps");
	}
	P->t->steps[P->t->n_steps++] = s;
	return 0;
}

struct tok_regex *tok_load_pattern(struct pipe *P, const cJSON *obj, const char *path)
{
	const cJSON *str = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, "String") : NULL;
	const cJSON *re = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, "Regex") : NULL;
	const cJSON *v = cJSON_IsString(str) ? str : re;
	char p[200], msg[ONIG_MSG_CAP];
	if (!cJSON_IsString(v)) {
		bad(P, path, "{\"String\": ...} or {\"Regex\": ...}");
		return NULL;
	}
	snprintf(p, sizeof(p), "%s.%s", path, v == str ? "String" : "Regex");
	struct tok_regex *x = tok_regex_new(v->valuestring, strlen(v->valuestring), v == str,
					    msg, sizeof(msg));
	if (!x)
		hug_error_set(P->err, "%s: %s: \"%.120s\" is not a regular expression "
			      "Oniguruma reads: %s", P->name, p, v->valuestring, msg);
	return x;
}

/* A Split step by a fixed regex (what Digits, Punctuation and the
 * whitespace splitters amount to). */
static int regex_step(struct pipe *P, const char *path, const char *regex,
		      enum tok_split_behavior beh, bool invert)
{
	char msg[ONIG_MSG_CAP];
	struct tok_regex *x = tok_regex_new(regex, strlen(regex), false, msg, sizeof(msg));
	if (!x)
		return hug_error_set(P->err, "%s: %s: internal regex: %s", P->name, path, msg);
	return add_step(P, path, (struct tok_step){ .kind = STEP_SPLIT, .re = x,
						    .behavior = beh, .invert = invert });
}

static int get_behavior(struct pipe *P, const cJSON *o, const char *path, bool required,
			enum tok_split_behavior *out)
{
	static const char *const names[] = { "Removed", "Isolated", "MergedWithPrevious",
					     "MergedWithNext", "Contiguous" };
	const cJSON *beh = cJSON_GetObjectItemCaseSensitive(o, "behavior");
	char p[200];
	snprintf(p, sizeof(p), "%s.behavior", path);
	if (!beh && !required)
		return 0;
	if (cJSON_IsString(beh))
		for (int k = 0; k < 5; k++)
			if (!strcmp(beh->valuestring, names[k])) {
				*out = (enum tok_split_behavior)k;
				return 0;
			}
	return bad(P, p, "one of \"Removed\", \"Isolated\", \"MergedWithPrevious\", "
		   "\"MergedWithNext\", \"Contiguous\"");
}

static int split_step(struct pipe *P, const cJSON *o, const char *path)
{
	char p[200];
	snprintf(p, sizeof(p), "%s.pattern", path);
	struct tok_step s = { .kind = STEP_SPLIT, .behavior = SPLIT_ISOLATED };
	if (get_behavior(P, o, path, true, &s.behavior) || opt_bool(P, o, "invert", path, &s.invert))
		return -1;
	const cJSON *pat = cJSON_GetObjectItemCaseSensitive(o, "pattern");
	const cJSON *re = cJSON_IsObject(pat) ? cJSON_GetObjectItemCaseSensitive(pat, "Regex") : NULL;
	if (cJSON_IsString(re) && s.behavior == SPLIT_ISOLATED && !s.invert) {
		/* matched by hand: the same pieces, faster */
		if (!strcmp(re->valuestring, GPT2_REGEX))
			return add_step(P, path, (struct tok_step){ .kind = STEP_SPLIT_GPT2 });
		if (!strcmp(re->valuestring, BLOOM_REGEX))
			return add_step(P, path, (struct tok_step){ .kind = STEP_SPLIT_BLOOM });
	}
	if (!(s.re = tok_load_pattern(P, pat, p)))
		return -1;
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

/* Metaspace: replacement, prepend_scheme (or the older add_prefix_space),
 * split. Shared with the decoder of the same name. */
int tok_metaspace_options(struct pipe *P, const cJSON *o, const char *path, char repl[8],
			  int *repl_len, enum tok_prepend *prepend, bool *split)
{
	char p[200];
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "replacement");
	snprintf(p, sizeof(p), "%s.replacement", path);
	memcpy(repl, "\xe2\x96\x81", 4); /* U+2581 */
	*repl_len = 3;
	if (r && !cJSON_IsNull(r)) {
		uint32_t cp;
		size_t n = cJSON_IsString(r) ? strlen(r->valuestring) : 0;
		if (!n || n > 4 || utf8_decode((const uint8_t *)r->valuestring, n, &cp) != (int)n ||
		    cp == UTF8_INVALID)
			return bad(P, p, "a string of one character");
		memcpy(repl, r->valuestring, n + 1);
		*repl_len = (int)n;
	}
	*prepend = PREPEND_ALWAYS;
	const cJSON *ps = cJSON_GetObjectItemCaseSensitive(o, "prepend_scheme");
	snprintf(p, sizeof(p), "%s.prepend_scheme", path);
	if (ps && !cJSON_IsNull(ps)) {
		if (!cJSON_IsString(ps))
			return bad(P, p, "\"first\", \"always\" or \"never\"");
		if (!strcmp(ps->valuestring, "first"))
			*prepend = PREPEND_FIRST;
		else if (!strcmp(ps->valuestring, "never"))
			*prepend = PREPEND_NEVER;
		else if (strcmp(ps->valuestring, "always"))
			return bad(P, p, "\"first\", \"always\" or \"never\"");
	} else {
		bool add = true;
		if (opt_bool(P, o, "add_prefix_space", path, &add))
			return -1;
		*prepend = add ? PREPEND_ALWAYS : PREPEND_NEVER;
	}
	*split = true;
	return opt_bool(P, o, "split", path, split);
}

static int metaspace_step(struct pipe *P, const cJSON *o, const char *path)
{
	struct tok_step s = { .kind = STEP_METASPACE };
	if (tok_metaspace_options(P, o, path, s.repl, &s.repl_len, &s.prepend, &s.split))
		return -1;
	return add_step(P, path, s);
}

static int pretok_one(struct pipe *P, const cJSON *o, const char *path, bool top)
{
	const char *ty = type_of(o);
	char p[160];
	(void)top;
	snprintf(p, sizeof(p), "%s.type", path);
	if (!ty)
		return bad(P, path, "an object with a string \"type\"");
	if (!strcmp(ty, "ByteLevel"))
		return bytelevel_step(P, o, path);
	if (!strcmp(ty, "Split"))
		return split_step(P, o, path);
	if (!strcmp(ty, "Metaspace"))
		return metaspace_step(P, o, path);
	if (!strcmp(ty, "Digits")) {
		bool each = false;
		if (opt_bool(P, o, "individual_digits", path, &each))
			return -1;
		return regex_step(P, path, each ? "\\p{N}" : "\\p{N}+", SPLIT_ISOLATED, false);
	}
	if (!strcmp(ty, "Punctuation")) {
		enum tok_split_behavior beh = SPLIT_ISOLATED;
		if (get_behavior(P, o, path, false, &beh))
			return -1;
		/* Rust's is_ascii_punctuation or Unicode punctuation (P*) */
		return regex_step(P, path, "[\\p{P}!-/:-@\\[-`{-~]", beh, false);
	}
	if (!strcmp(ty, "Whitespace")) /* \w+|[^\w\s]+ with Rust regex's \w */
		return regex_step(P, path, "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]+"
				  "|[^\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}"
				  "\\p{White_Space}]+", SPLIT_REMOVED, true);
	if (!strcmp(ty, "WhitespaceSplit"))
		return regex_step(P, path, "\\p{White_Space}", SPLIT_REMOVED, false);
	if (!strcmp(ty, "Sequence"))
		return each_in_sequence(P, o, path, "pretokenizers", pretok_one);
	char what[160];
	snprintf(what, sizeof(what), "pre-tokenizer \"%.100s\"", ty);
	return refuse(P, p, what, "ByteLevel, Split, Metaspace, Digits, Punctuation, "
		      "Whitespace, WhitespaceSplit and a Sequence of them");
}

static int load_pretok(struct pipe *P, const cJSON *root)
{
	const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
	struct tokenizer *t = P->t;
	if (pt && !cJSON_IsNull(pt) && pretok_one(P, pt, "pre_tokenizer", true))
		return -1;
	for (int i = 0; i < t->n_steps; i++)
		if (t->steps[i].kind == STEP_BYTELEVEL && i != t->n_steps - 1)
			return hug_error_set(P->err, "%s: pre_tokenizer: a ByteLevel step must be "
					     "the last (hug maps bytes to the ByteLevel alphabet "
					     "inside the model)", P->name);
	t->byte_level = t->n_steps > 0 && t->steps[t->n_steps - 1].kind == STEP_BYTELEVEL;
	return 0;
}

/* The ids of special token `name` in TemplateProcessing's special_tokens,
 * appended to *ids. */
static int template_special(struct pipe *P, const cJSON *post, const char *path,
			    const char *name, int32_t **ids, int *n)
{
	const cJSON *sp = cJSON_GetObjectItemCaseSensitive(post, "special_tokens");
	const cJSON *e = cJSON_IsObject(sp) ? cJSON_GetObjectItemCaseSensitive(sp, name) : NULL;
	const cJSON *list = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "ids") : NULL;
	const cJSON *v;
	if (!cJSON_IsArray(list))
		return hug_error_set(P->err, "%s: %s.special_tokens[\"%.80s\"].ids: expected an "
				     "array of ids", P->name, path, name);
	cJSON_ArrayForEach(v, list) {
		if (!cJSON_IsNumber(v) || v->valuedouble < 0 ||
		    v->valuedouble >= (double)P->t->vocab_size)
			return hug_error_set(P->err, "%s: %s.special_tokens[\"%.80s\"].ids: expected "
					     "ids below %lld", P->name, path, name,
					     (long long)P->t->vocab_size);
		*ids = hug_realloc(*ids, (size_t)(*n + 1) * sizeof(int32_t));
		(*ids)[(*n)++] = (int32_t)v->valuedouble;
	}
	return 0;
}

/* TemplateProcessing: the "single" template, specials before and after $A. */
static int template_step(struct pipe *P, const cJSON *o, const char *path)
{
	const cJSON *single = cJSON_GetObjectItemCaseSensitive(o, "single"), *item;
	char p[200];
	bool seen_a = false;
	int i = 0;
	snprintf(p, sizeof(p), "%s.single", path);
	if (!cJSON_IsArray(single))
		return bad(P, p, "an array of template pieces");
	cJSON_ArrayForEach(item, single) {
		const cJSON *sp = cJSON_GetObjectItemCaseSensitive(item, "SpecialToken");
		const cJSON *sq = cJSON_GetObjectItemCaseSensitive(item, "Sequence");
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(sp ? sp : sq, "id");
		snprintf(p, sizeof(p), "%s.single[%d]", path, i++);
		if (!cJSON_IsString(id))
			return bad(P, p, "{\"SpecialToken\": {\"id\": ...}} or {\"Sequence\": "
				   "{\"id\": \"A\"}}");
		if (sq) {
			if (seen_a || strcmp(id->valuestring, "A"))
				return refuse(P, p, "a template with other than one $A",
					      "one $A in \"single\"");
			seen_a = true;
			continue;
		}
		struct tokenizer *t = P->t;
		if (seen_a ? template_special(P, o, path, id->valuestring, &t->tmpl_post,
					      &t->n_tmpl_post)
			   : template_special(P, o, path, id->valuestring, &t->tmpl_pre,
					      &t->n_tmpl_pre))
			return -1;
	}
	if (!seen_a)
		return refuse(P, p, "a template without $A", "one $A in \"single\"");
	return 0;
}

static int post_one(struct pipe *P, const cJSON *o, const char *path, bool top)
{
	const char *ty = type_of(o);
	char p[160];
	(void)top;
	if (!ty)
		return bad(P, path, "an object with a string \"type\"");
	if (!strcmp(ty, "ByteLevel"))
		return 0; /* offsets only */
	if (!strcmp(ty, "TemplateProcessing"))
		return template_step(P, o, path);
	if (!strcmp(ty, "Sequence"))
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
	if (load_pretok(&P, root))
		return -1;
	if (post && !cJSON_IsNull(post) && post_one(&P, post, "post_processor", true))
		return -1;
	return 0;
}

void tok_free_pipeline(struct tokenizer *t)
{
	for (int i = 0; i < t->n_steps; i++)
		tok_regex_free(t->steps[i].re);
	for (int i = 0; i < t->n_norms; i++) {
		tok_regex_free(t->norms[i].re);
		hug_free(t->norms[i].content);
	}
	for (int i = 0; i < t->n_decs; i++) {
		tok_regex_free(t->decs[i].re);
		hug_free(t->decs[i].content);
	}
	hug_free(t->tmpl_pre);
	hug_free(t->tmpl_post);
}
