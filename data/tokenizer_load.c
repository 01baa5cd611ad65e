/* tokenizer_load.c: reads a Hugging Face tokenizer.json into struct
 * tokenizer (the model, added tokens; the pipeline around them through
 * tokenizer_pipeline.c and tokenizer_parts.c), validating every part hug
 * relies on and refusing, by JSON path, every feature it does not
 * implement. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../base/json.h"
#include "tokenizer_impl.h"
#include "utf8.h"

#define MAX_ID (1 << 26)

struct load {
	const char *name;       /* file name for messages */
	struct hug_error *err;
	struct tokenizer *t;
	int32_t *merge_pairs;   /* (a, b) per merge, for the hash */
};

/* Reads an optional boolean member; absent or null keeps *out. */
static int get_bool(struct load *L, const cJSON *obj, const char *key, const char *path,
		    bool *out)
{
	return hug_json_get_bool(&(struct json_at){ L->name, path }, obj, key, false, out,
				 L->err);
}

/* The "type" string of an object, or NULL with err naming `path`. */
static const char *get_type(struct load *L, const cJSON *obj, const char *path)
{
	const cJSON *ty = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, "type") : NULL;
	if (!cJSON_IsString(ty)) {
		hug_error_set(L->err, "%s: %s: expected an object with a string \"type\"",
			      L->name, path);
		return NULL;
	}
	return ty->valuestring;
}

/* An id: an integer in [0, MAX_ID). */
static int get_id(const cJSON *v, int32_t *id)
{
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= MAX_ID ||
	    v->valuedouble != floor(v->valuedouble))
		return -1;
	*id = (int32_t)v->valuedouble;
	return 0;
}

static int refuse(struct load *L, const char *path, const char *what, const char *supported)
{
	return hug_error_set(L->err, "%s: %s: %s is not supported (hug supports %s)",
			     L->name, path, what, supported);
}

/* First pass over model.vocab and added_tokens: the id range. */
static int scan_ids(struct load *L, const cJSON *vocab, const cJSON *added, int64_t *size)
{
	int64_t max = -1;
	const cJSON *e;
	cJSON_ArrayForEach(e, vocab) {
		int32_t id;
		if (get_id(e, &id))
			return hug_error_set(L->err, "%s: model.vocab[\"%.80s\"]: expected an "
					     "integer id in [0, %d)", L->name, e->string, MAX_ID);
		max = id > max ? id : max;
	}
	int i = 0;
	cJSON_ArrayForEach(e, added) {
		int32_t id;
		if (!cJSON_IsObject(e) || get_id(cJSON_GetObjectItemCaseSensitive(e, "id"), &id))
			return hug_error_set(L->err, "%s: added_tokens[%d].id: expected an "
					     "integer id in [0, %d)", L->name, i, MAX_ID);
		max = id > max ? id : max;
		i++;
	}
	*size = max + 1;
	return 0;
}

/* Fills text[] and text_map from model.vocab. */
static int load_vocab(struct load *L, const cJSON *vocab)
{
	struct tokenizer *t = L->t;
	const cJSON *e;
	cJSON_ArrayForEach(e, vocab) {
		int32_t id = (int32_t)e->valuedouble;
		if (t->text[id])
			return hug_error_set(L->err, "%s: model.vocab[\"%.80s\"]: id %d is also "
					     "given to \"%.80s\"", L->name, e->string, id,
					     t->text[id]);
		t->text[id] = hug_strdup(e->string);
		tok_strmap_put(&t->text_map, t->text[id], strlen(t->text[id]), id);
	}
	return 0;
}

static int load_added_one(struct load *L, const cJSON *e, int i, struct tok_added *a)
{
	char path[64];
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
	snprintf(path, sizeof(path), "added_tokens[%d]", i);
	if (!cJSON_IsString(c) || !c->valuestring[0])
		return hug_error_set(L->err, "%s: %s.content: expected a non-empty string",
				     L->name, path);
	bool single_word = false;
	a->id = (int32_t)cJSON_GetObjectItemCaseSensitive(e, "id")->valuedouble;
	a->special = false;
	if (get_bool(L, e, "special", path, &a->special))
		return -1;
	a->normalized = !a->special;
	if (get_bool(L, e, "single_word", path, &single_word) ||
	    get_bool(L, e, "lstrip", path, &a->lstrip) ||
	    get_bool(L, e, "rstrip", path, &a->rstrip) ||
	    get_bool(L, e, "normalized", path, &a->normalized))
		return -1;
	a->single_word = single_word;
	a->content = hug_strdup(c->valuestring);
	a->len = strlen(a->content);
	a->match = a->content;
	a->match_len = a->len;
	if (a->normalized && L->t->n_norms > 0) {
		/* matched in normalized text, so normalized itself */
		struct buf out = { 0 }, tmp = { 0 };
		tok_normalize(L->t, (const uint8_t *)a->content, a->len, &out, &tmp);
		buf_free(&tmp);
		if (!out.n) {
			buf_free(&out);
			return hug_error_set(L->err, "%s: %s.content: normalizes to nothing",
					     L->name, path);
		}
		a->match = out.p;
		a->match_len = out.n;
	}
	return 0;
}

static int load_added(struct load *L, const cJSON *added)
{
	struct tokenizer *t = L->t;
	int n = cJSON_GetArraySize(added), i = 0;
	const cJSON *e;
	t->added = hug_calloc((size_t)(n ? n : 1), sizeof(*t->added));
	cJSON_ArrayForEach(e, added) {
		struct tok_added *a = &t->added[i];
		if (load_added_one(L, e, i, a))
			return -1;
		t->n_added = ++i;
		if (t->text[a->id] && strcmp(t->text[a->id], a->content))
			return hug_error_set(L->err, "%s: added_tokens[%d]: id %d is \"%.80s\" in "
					     "model.vocab but the content is \"%.80s\"", L->name,
					     i - 1, a->id, t->text[a->id], a->content);
		if (!t->text[a->id])
			t->text[a->id] = hug_strdup(a->content);
		t->special[a->id] = a->special;
		t->added_first[(uint8_t)a->match[0]] |= a->normalized ? 2 : 1;
	}
	return 0;
}

/* What decode writes for a token: the bytes its characters stand for when
 * every character is in the ByteLevel alphabet, else its UTF-8 text (HF's
 * ByteLevel decoder does the same). Returns whether it was the former. */
static bool token_bytes(struct tokenizer *t, int32_t id)
{
	const char *s = t->text[id];
	size_t n = strlen(s), k = 0;
	char *out = hug_malloc(n + 1);
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		int len = utf8_decode((const uint8_t *)s + i, n - i, &cp);
		int b = cp == UTF8_INVALID ? -1 : tok_cp_to_byte(cp);
		if (b < 0) {
			memcpy(out, s, n);
			out[n] = '\0';
			t->bytes[id] = out;
			t->bytes_len[id] = (uint32_t)n;
			return false;
		}
		out[k++] = (char)b;
		i += (size_t)len;
	}
	out[k] = '\0';
	t->bytes[id] = out;
	t->bytes_len[id] = (uint32_t)k;
	return true;
}

/* Splits merge i into its two token texts; -1 with err on a bad shape. */
static int merge_parts(struct load *L, const cJSON *m, int i, char *buf, size_t cap,
		       const char **a, const char **b)
{
	if (cJSON_IsString(m)) {
		const char *s = m->valuestring, *sp = strchr(s, ' ');
		if (sp && !strchr(sp + 1, ' ') && sp > s && sp[1] && strlen(s) < cap) {
			memcpy(buf, s, strlen(s) + 1);
			buf[sp - s] = '\0';
			*a = buf;
			*b = buf + (sp - s) + 1;
			return 0;
		}
	} else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 &&
		   cJSON_IsString(cJSON_GetArrayItem(m, 0)) &&
		   cJSON_IsString(cJSON_GetArrayItem(m, 1))) {
		*a = cJSON_GetArrayItem(m, 0)->valuestring;
		*b = cJSON_GetArrayItem(m, 1)->valuestring;
		return 0;
	}
	return hug_error_set(L->err, "%s: model.merges[%d]: expected \"a b\" or [\"a\", \"b\"]",
			     L->name, i);
}

static int load_merges(struct load *L, const cJSON *merges)
{
	struct tokenizer *t = L->t;
	char buf[1024], *cat = NULL;
	size_t cat_cap = 0;
	int i = 0, rc = -1;
	const cJSON *m;
	L->merge_pairs = hug_malloc(2 * sizeof(int32_t) * (size_t)(cJSON_GetArraySize(merges) + 1));
	cJSON_ArrayForEach(m, merges) {
		const char *a = NULL, *b = NULL;
		if (merge_parts(L, m, i, buf, sizeof(buf), &a, &b))
			goto out;
		size_t la = strlen(a), lb = strlen(b);
		if (la + lb + 1 > cat_cap)
			cat = hug_realloc(cat, cat_cap = 2 * (la + lb + 1));
		memcpy(cat, a, la);
		memcpy(cat + la, b, lb + 1);
		int32_t ia = tok_strmap_get(&t->text_map, a, la);
		int32_t ib = tok_strmap_get(&t->text_map, b, lb);
		int32_t ic = tok_strmap_get(&t->text_map, cat, la + lb);
		const char *missing = ia < 0 ? a : ib < 0 ? b : ic < 0 ? cat : NULL;
		if (missing) {
			hug_error_set(L->err, "%s: model.merges[%d]: \"%.80s\" is not in model.vocab",
				      L->name, i, missing);
			goto out;
		}
		tok_pairmap_put(&t->merges, tok_pair_key(ia, ib), i, ic);
		L->merge_pairs[2 * i] = ia;
		L->merge_pairs[2 * i + 1] = ib;
		i++;
	}
	t->n_merges = i;
	rc = 0;
out:
	hug_free(cat);
	return rc;
}

/* model: BPE with its options. */
static int check_model_options(struct load *L, const cJSON *model)
{
	struct tokenizer *t = L->t;
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, "dropout");
	if (v && !cJSON_IsNull(v) && !(cJSON_IsNumber(v) && v->valuedouble == 0))
		return refuse(L, "model.dropout", "BPE dropout", "null");
	static const char *const affixes[] = { "continuing_subword_prefix", "end_of_word_suffix" };
	for (int k = 0; k < 2; k++) {
		v = cJSON_GetObjectItemCaseSensitive(model, affixes[k]);
		if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !v->valuestring[0])) {
			char path[64];
			snprintf(path, sizeof(path), "model.%s", affixes[k]);
			return refuse(L, path, "a BPE subword affix (used with WordPiece-style "
				      "vocabularies)", "null or \"\"");
		}
	}
	if (get_bool(L, model, "byte_fallback", "model", &t->byte_fallback) ||
	    get_bool(L, model, "fuse_unk", "model", &t->fuse_unk) ||
	    get_bool(L, model, "ignore_merges", "model", &t->ignore_merges))
		return -1;
	v = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
	t->unk_id = -1;
	if (cJSON_IsString(v)) {
		t->unk_id = tok_strmap_get(&t->text_map, v->valuestring, strlen(v->valuestring));
		if (t->unk_id < 0)
			return hug_error_set(L->err, "%s: model.unk_token: \"%.80s\" is not in "
					     "model.vocab", L->name, v->valuestring);
	} else if (v && !cJSON_IsNull(v))
		return hug_error_set(L->err, "%s: model.unk_token: expected a string or null",
				     L->name);
	return 0;
}

static int load_model(struct load *L, const cJSON *root)
{
	const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
	const char *ty = get_type(L, model, "model");
	if (!ty)
		return -1;
	if (strcmp(ty, "BPE")) {
		char what[160];
		snprintf(what, sizeof(what), "model type \"%.100s\"", ty);
		return refuse(L, "model.type", what, "\"BPE\"; WordPiece, Unigram and "
			      "WordLevel models are not implemented");
	}
	const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
	const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
	const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
	if (!cJSON_IsObject(vocab))
		return hug_error_set(L->err, "%s: model.vocab: expected an object of token: id",
				     L->name);
	if (!cJSON_IsArray(merges))
		return hug_error_set(L->err, "%s: model.merges: expected an array", L->name);
	if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added))
		return hug_error_set(L->err, "%s: added_tokens: expected an array", L->name);
	struct tokenizer *t = L->t;
	if (scan_ids(L, vocab, added, &t->vocab_size))
		return -1;
	size_t n = (size_t)(t->vocab_size > 0 ? t->vocab_size : 1);
	t->text = hug_calloc(n, sizeof(char *));
	t->bytes = hug_calloc(n, sizeof(char *));
	t->bytes_len = hug_calloc(n, sizeof(uint32_t));
	t->special = hug_calloc(n, 1);
	if (load_vocab(L, vocab) || check_model_options(L, model) || load_merges(L, merges))
		return -1;
	if (cJSON_IsArray(added) && load_added(L, added))
		return -1;
	return 0;
}

/* The single-byte tokens, eos, and what decode writes per id. */
static void finish(struct tokenizer *t)
{
	for (int b = 0; b < 256; b++) {
		char s[8];
		int len = tok_byte_utf8((uint8_t)b, s);
		t->byte_id[b] = tok_strmap_get(&t->text_map, s, (size_t)len);
		snprintf(s, sizeof(s), "<0x%02X>", b);
		t->fallback_id[b] = t->byte_fallback ? tok_strmap_get(&t->text_map, s, 6) : -1;
	}
	for (int64_t id = 0; id < t->vocab_size; id++) {
		if (!t->text[id])
			continue;
		bool mapped = token_bytes(t, (int32_t)id);
		if (mapped && tok_strmap_get(&t->text_map, t->text[id], strlen(t->text[id])) == id)
			tok_strmap_put(&t->bytes_map, t->bytes[id], t->bytes_len[id], (int32_t)id);
	}
	static const char *const eos[] = { "</s>", "<|endoftext|>", "<eos>", "<|end_of_text|>" };
	t->eos_id = -1;
	for (int k = 0; k < 4 && t->eos_id < 0; k++)
		t->eos_id = tokenizer_token_id(t, eos[k]);
}

/* "name:LINE:COL: malformed JSON" for a parse that stopped at `at`. */
static int json_error(const char *json, size_t len, const char *at, const char *name,
		      struct hug_error *err)
{
	int line, col;
	if (!at || at < json || at > json + len)
		at = json + len;
	hug_json_position(json, len, (size_t)(at - json), &line, &col);
	return hug_error_set(err, "%s:%d:%d: malformed JSON (expected a tokenizer.json object)",
			     name, line, col);
}

int tokenizer_load_json(const char *json, size_t len, const char *name,
			struct tokenizer **tok, struct hug_error *err)
{
	hug_json_init();
	utf8_init();
	*tok = NULL;
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
	if (!root)
		return json_error(json, len, end, name, err);
	struct tokenizer *t = hug_calloc(1, sizeof(*t));
	struct load L = { name, err, t, NULL };
	int rc = -1;
	if (!cJSON_IsObject(root)) {
		hug_error_set(err, "%s: expected a JSON object at the top level", name);
		goto out;
	}
	struct tok_pipe P = { name, err, t };
	if (tok_load_normalizer(&P, root) || load_model(&L, root) ||
	    tok_load_pipeline(root, name, t, err) || tok_load_decoder(&P, root))
		goto out;
	finish(t);
	tok_compute_hash(t, L.merge_pairs);
	rc = 0;
out:
	cJSON_Delete(root);
	hug_free(L.merge_pairs);
	if (rc)
		tokenizer_free(t);
	else
		*tok = t;
	return rc;
}

int tokenizer_load(const char *path, struct tokenizer **tok, struct hug_error *err)
{
	char *buf, *file = NULL;
	size_t n;
	*tok = NULL;
	if (fs_is_dir(path)) { /* a model directory: its tokenizer.json */
		size_t len = strlen(path);
		file = hug_malloc(len + sizeof("/tokenizer.json"));
		memcpy(file, path, len);
		strcpy(file + len, len && path[len - 1] == '/' ? "tokenizer.json" : "/tokenizer.json");
		path = file;
	}
	int rc = -1;
	if (!fs_read_file(path, (size_t)1 << 31, &buf, &n, err)) {
		rc = tokenizer_load_json(buf, n, path, tok, err);
		hug_free(buf);
	}
	hug_free(file);
	return rc;
}
