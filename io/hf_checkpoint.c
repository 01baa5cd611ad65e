/* hf_checkpoint.c: Hugging Face BLOOM model directories: config.json and
 * generation_config.json (read with every field checked, written as
 * transformers writes them), weights in model.safetensors or in shards
 * listed by model.safetensors.index.json (validated, then loaded by name
 * into the parameter registry), saving with greedy sharding, and whole
 * directories written under a temporary name and swapped into place.
 *
 * Loading checks everything (names, duplicates, shapes, dtypes, missing
 * tensors) before it copies a single value, so a failed load leaves the
 * parameters as they were. */
#include "hf_checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../base/json.h"
#include "../base/panic.h"
#include "safetensors.h"

#define PREFIX "transformer."
#define TIED_LM_HEAD "lm_head.weight"
/* JSON files bigger than this are refused (a 176B index is ~100 KB). */
#define JSON_FILE_MAX (64u << 20)
/* Largest integer a JSON number (a double in cJSON) holds exactly. */
#define JSON_INT_MAX 9007199254740992.0

/* ---- paths and files ---- */

/* ---- a small pretty JSON emitter (2-space indent, as Python's json) ---- */

struct jbuf {
	char *p;
	size_t len, cap;
};

static void jb_put(struct jbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2 + 256;
		b->p = hug_realloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void jb_str(struct jbuf *b, const char *s)
{
	jb_put(b, s, strlen(s));
}

static void jb_printf(struct jbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void jb_printf(struct jbuf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	HUG_ASSERT(n >= 0 && (size_t)n < sizeof(tmp));
	jb_put(b, tmp, (size_t)n);
}

/* A JSON string literal, escaped. */
static void jb_quote(struct jbuf *b, const char *s)
{
	jb_put(b, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\') {
			char e[2] = { '\\', (char)*c };
			jb_put(b, e, 2);
		} else if (*c < 0x20) {
			jb_printf(b, "\\u%04x", *c);
		} else {
			jb_put(b, (const char *)c, 1);
		}
	}
	jb_put(b, "\"", 1);
}

/* The shortest text that reads back as v, in Python's style (a float
 * always has a '.' or an exponent). v must be finite. */
static void format_double(double v, char *buf, size_t n)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, n, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	if (!strpbrk(buf, ".e"))
		strncat(buf, ".0", n - strlen(buf) - 1);
}

/* One "key": value member of a flat object; value is JSON text. */
struct jmember {
	const char *key;
	char value[128];
};

static int by_member_key(const void *a, const void *b)
{
	return strcmp(((const struct jmember *)a)->key,
		      ((const struct jmember *)b)->key);
}

/* Emits an object of `n` members, keys sorted (as transformers'
 * to_json_string does), 2-space indent, trailing newline. */
static void jb_object(struct jbuf *b, struct jmember *m, int n)
{
	qsort(m, (size_t)n, sizeof(*m), by_member_key);
	jb_str(b, "{\n");
	for (int i = 0; i < n; i++) {
		jb_str(b, "  ");
		jb_quote(b, m[i].key);
		jb_str(b, ": ");
		jb_str(b, m[i].value);
		jb_str(b, i + 1 < n ? ",\n" : "\n");
	}
	jb_str(b, "}\n");
}

/* ---- config.json: reading ---- */

/* The member `key` of `obj`, or NULL; a key given twice is an error
 * (Python keeps the last one, cJSON the first: refuse to guess). */
static int json_member(const char *file, const cJSON *obj, const char *key,
		       const cJSON **out, struct hug_error *err)
{
	const cJSON *found = NULL;
	const cJSON *it;
	cJSON_ArrayForEach(it, obj) {
		if (!it->string || strcmp(it->string, key) != 0)
			continue;
		if (found)
			return hug_error_set(err, "%s: %s: given twice", file, key);
		found = it;
	}
	*out = found;
	return 0;
}

/* An integral JSON number in [lo, hi] -> *out. */
static bool json_int_in(const cJSON *it, int64_t lo, int64_t hi, int64_t *out)
{
	if (!cJSON_IsNumber(it))
		return false;
	double v = it->valuedouble;
	if (!(v >= -JSON_INT_MAX && v <= JSON_INT_MAX) || v != floor(v))
		return false;
	if (v < (double)lo || v > (double)hi)
		return false;
	*out = (int64_t)v;
	return true;
}

/* A required size: a positive integer under `key` or its `alias`; when
 * both are present they must agree. */
static int cfg_size(const char *file, const cJSON *root, const char *key,
		    const char *alias, int64_t max, int64_t *out,
		    struct hug_error *err)
{
	const char *names[2] = { key, alias };
	bool have = false;
	const char *have_name = NULL;
	char got[96];
	for (int i = 0; i < 2; i++) {
		const cJSON *it;
		int64_t v;
		if (!names[i])
			continue;
		if (json_member(file, root, names[i], &it, err))
			return -1;
		if (!it)
			continue;
		if (!json_int_in(it, 1, INT64_MAX, &v))
			return hug_error_set(err, "%s: %s: expected a positive integer, got %s",
					     file, names[i], hug_json_text(it, got, sizeof(got)));
		if (v > max)
			return hug_error_set(err, "%s: %s: expected a positive integer at most %" PRId64 ", got %s",
					     file, names[i], max, hug_json_text(it, got, sizeof(got)));
		if (have && v != *out)
			return hug_error_set(err, "%s: %s is %" PRId64 " but %s is %" PRId64
					     "; give one of them",
					     file, have_name, *out, names[i], v);
		have = true;
		have_name = names[i];
		*out = v;
	}
	if (!have) {
		if (alias)
			return hug_error_set(err, "%s: %s: missing (also looked for %s)",
					     file, key, alias);
		return hug_error_set(err, "%s: %s: missing", file, key);
	}
	return 0;
}

/* An optional finite number. */
static int cfg_number(const char *file, const cJSON *root, const char *key,
		      double *out, struct hug_error *err)
{
	const cJSON *it;
	char got[96];
	if (json_member(file, root, key, &it, err))
		return -1;
	if (!it)
		return 0;
	if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
		return hug_error_set(err, "%s: %s: expected a number, got %s",
				     file, key, hug_json_text(it, got, sizeof(got)));
	*out = it->valuedouble;
	return 0;
}

/* An optional boolean. */
static int cfg_bool(const char *file, const cJSON *root, const char *key,
		    bool *out, struct hug_error *err)
{
	const cJSON *it;
	char got[96];
	if (json_member(file, root, key, &it, err))
		return -1;
	if (!it)
		return 0;
	if (!cJSON_IsBool(it))
		return hug_error_set(err, "%s: %s: expected true or false, got %s",
				     file, key, hug_json_text(it, got, sizeof(got)));
	*out = cJSON_IsTrue(it);
	return 0;
}

/* An optional token id: an integer >= 0, or null (stored as -1). */
static int cfg_token(const char *file, const cJSON *root, const char *key,
		     int *out, struct hug_error *err)
{
	const cJSON *it;
	int64_t v;
	char got[96];
	if (json_member(file, root, key, &it, err))
		return -1;
	if (!it)
		return 0;
	if (cJSON_IsNull(it)) {
		*out = -1;
		return 0;
	}
	if (!json_int_in(it, 0, INT32_MAX, &v))
		return hug_error_set(err, "%s: %s: expected a token id (an integer >= 0) or null, got %s",
				     file, key, hug_json_text(it, got, sizeof(got)));
	*out = (int)v;
	return 0;
}

/* model_type and tie_word_embeddings: what hug can represent. */
static int cfg_model_kind(const char *file, const cJSON *root,
			  struct hug_error *err)
{
	const cJSON *it;
	char got[96];
	bool tied = true;
	if (json_member(file, root, "model_type", &it, err))
		return -1;
	if (it && !(cJSON_IsString(it) && strcmp(it->valuestring, "bloom") == 0))
		return hug_error_set(err, "%s: model_type: expected \"bloom\", got %s (hug reads BLOOM models only)",
				     file, hug_json_text(it, got, sizeof(got)));
	if (cfg_bool(file, root, "tie_word_embeddings", &tied, err))
		return -1;
	if (!tied)
		return hug_error_set(err, "%s: tie_word_embeddings: false is not supported (hug ties lm_head to the word embeddings)",
				     file);
	return 0;
}

/* Line and column of byte `off` in `text`, for parse errors. */
static void text_position(const char *text, size_t off, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && text[i]; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/* Parses the JSON object in file `path`. *root must be cJSON_Delete'd. */
static int parse_json_object(const char *path, cJSON **root,
			     struct hug_error *err)
{
	char *text = NULL;
	size_t len = 0;
	const char *end = NULL;
	int line, col;
	*root = NULL;
	hug_json_init();
	if (fs_read_file(path, JSON_FILE_MAX, &text, &len, err))
		return -1;
	cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, false);
	if (!j) {
		size_t off = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
		text_position(text, off, &line, &col);
		hug_free(text);
		if (len == 0)
			return hug_error_set(err, "%s: not valid JSON (the file is empty)", path);
		return hug_error_set(err, "%s: not valid JSON (error near line %d, column %d)",
				     path, line, col);
	}
	size_t off = (size_t)(end - text);
	while (off < len && strchr(" \t\r\n", text[off]))
		off++;
	if (off < len) {
		text_position(text, off, &line, &col);
		hug_free(text);
		cJSON_Delete(j);
		return hug_error_set(err, "%s: not valid JSON (text after the value at line %d, column %d)",
				     path, line, col);
	}
	hug_free(text);
	if (!cJSON_IsObject(j)) {
		hug_error_set(err, "%s: expected a JSON object, got %s", path, hug_json_kind(j));
		cJSON_Delete(j);
		return -1;
	}
	*root = j;
	return 0;
}

static int config_from_json(const char *file, const cJSON *root,
			    struct bloom_config *cfg, struct hug_error *err)
{
	int64_t vocab = 0, hidden = 0, n_layer = 0, n_head = 0;
	if (cfg_model_kind(file, root, err) ||
	    cfg_size(file, root, "vocab_size", NULL, INT32_MAX, &vocab, err) ||
	    cfg_size(file, root, "hidden_size", "n_embed", INT64_MAX, &hidden, err) ||
	    cfg_size(file, root, "n_layer", "num_hidden_layers", INT32_MAX, &n_layer, err) ||
	    cfg_size(file, root, "n_head", "num_attention_heads", INT32_MAX, &n_head, err))
		return -1;
	/* hidden_size is squared (and times 12) in the parameter count */
	if (hidden > ((int64_t)1 << 28))
		return hug_error_set(err, "%s: hidden_size: %" PRId64 " is too large (at most %d)",
				     file, hidden, 1 << 28);
	*cfg = bloom_config_make(vocab, hidden, (int)n_layer, (int)n_head);
	if (cfg_number(file, root, "layer_norm_epsilon", &cfg->layer_norm_epsilon, err) ||
	    cfg_bool(file, root, "apply_residual_connection_post_layernorm",
		     &cfg->apply_residual_connection_post_layernorm, err) ||
	    cfg_number(file, root, "hidden_dropout", &cfg->hidden_dropout, err) ||
	    cfg_number(file, root, "attention_dropout", &cfg->attention_dropout, err) ||
	    cfg_number(file, root, "initializer_range", &cfg->initializer_range, err) ||
	    cfg_token(file, root, "bos_token_id", &cfg->bos_token_id, err) ||
	    cfg_token(file, root, "eos_token_id", &cfg->eos_token_id, err) ||
	    cfg_token(file, root, "pad_token_id", &cfg->pad_token_id, err))
		return -1;
	return bloom_config_validate(cfg, file, err);
}

int hf_bloom_config_read(const char *path, struct bloom_config *cfg,
			 struct hug_error *err)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return hug_error_set(err, "%s: cannot open: %s", path, strerror(errno));
	char *file = S_ISDIR(st.st_mode) ? fs_join(path, HF_CONFIG_FILE) : hug_strdup(path);
	cJSON *root;
	int rc = -1;
	if (S_ISDIR(st.st_mode) && !fs_exists(file)) {
		hug_error_set(err, "%s: no %s (is this a Hugging Face model directory?)",
			      path, HF_CONFIG_FILE);
		goto free_file;
	}
	if (parse_json_object(file, &root, err))
		goto free_file;
	struct bloom_config c;
	rc = config_from_json(file, root, &c, err);
	if (rc == 0)
		*cfg = c;
	cJSON_Delete(root);
free_file:
	hug_free(file);
	return rc;
}

/* ---- config.json: writing ---- */

static const char *torch_dtype_name(enum dtype dt)
{
	switch (dt) {
	case DT_F32:
		return "float32";
	case DT_F64:
		return "float64";
	case DT_BF16:
		return "bfloat16";
	case DT_F16:
		return "float16";
	default:
		return NULL;
	}
}

static void member_token(struct jmember *m, const char *key, int id)
{
	m->key = key;
	if (id < 0)
		snprintf(m->value, sizeof(m->value), "null");
	else
		snprintf(m->value, sizeof(m->value), "%d", id);
}

static void member_double(struct jmember *m, const char *key, double v)
{
	m->key = key;
	format_double(v, m->value, sizeof(m->value));
}

static void member_text(struct jmember *m, const char *key, const char *json)
{
	m->key = key;
	snprintf(m->value, sizeof(m->value), "%s", json);
}

static int write_json_in(const char *dir, const char *name, const struct jbuf *b,
			 struct hug_error *err)
{
	char *path = fs_join(dir, name);
	int rc = fs_write_atomic(path, b->p, b->len, err);
	hug_free(path);
	return rc;
}

int hf_bloom_config_write(const struct bloom_config *cfg, enum dtype weights_dtype,
			  const char *dir, struct hug_error *err)
{
	const char *tdt = torch_dtype_name(weights_dtype);
	struct jmember m[24];
	struct jbuf b = { 0 };
	char q[64];
	int n = 0, rc;
	if (!tdt)
		return hug_error_set(err, "%s: %s: weights dtype %s is not a float type",
				     dir, HF_CONFIG_FILE, dtype_name(weights_dtype));
	if (!isfinite(cfg->layer_norm_epsilon) || !isfinite(cfg->hidden_dropout) ||
	    !isfinite(cfg->attention_dropout) || !isfinite(cfg->initializer_range))
		return hug_error_set(err, "%s: %s: the config holds a non-finite number",
				     dir, HF_CONFIG_FILE);
	snprintf(q, sizeof(q), "\"%s\"", tdt);
	member_text(&m[n++], "apply_residual_connection_post_layernorm",
		    cfg->apply_residual_connection_post_layernorm ? "true" : "false");
	member_text(&m[n++], "architectures", "[\n    \"BloomForCausalLM\"\n  ]");
	member_double(&m[n++], "attention_dropout", cfg->attention_dropout);
	member_token(&m[n++], "bos_token_id", cfg->bos_token_id);
	/* transformers 5 writes "dtype"; 4.x reads "torch_dtype" */
	member_text(&m[n++], "dtype", q);
	member_token(&m[n++], "eos_token_id", cfg->eos_token_id);
	member_double(&m[n++], "hidden_dropout", cfg->hidden_dropout);
	m[n].key = "hidden_size";
	snprintf(m[n++].value, sizeof(m[0].value), "%" PRId64, cfg->hidden_size);
	member_double(&m[n++], "initializer_range", cfg->initializer_range);
	member_double(&m[n++], "layer_norm_epsilon", cfg->layer_norm_epsilon);
	member_text(&m[n++], "model_type", "\"bloom\"");
	m[n].key = "n_head";
	snprintf(m[n++].value, sizeof(m[0].value), "%d", cfg->n_head);
	m[n].key = "n_layer";
	snprintf(m[n++].value, sizeof(m[0].value), "%d", cfg->n_layer);
	member_token(&m[n++], "pad_token_id", cfg->pad_token_id);
	member_text(&m[n++], "pretraining_tp", "1");
	member_text(&m[n++], "slow_but_exact", "false");
	member_text(&m[n++], "tie_word_embeddings", "true");
	member_text(&m[n++], "torch_dtype", q);
	member_text(&m[n++], "use_cache", "true");
	m[n].key = "vocab_size";
	snprintf(m[n++].value, sizeof(m[0].value), "%" PRId64, cfg->vocab_size);
	jb_object(&b, m, n);
	rc = write_json_in(dir, HF_CONFIG_FILE, &b, err);
	if (rc == 0) {
		n = 0;
		b.len = 0;
		member_text(&m[n++], "_from_model_config", "true");
		member_token(&m[n++], "bos_token_id", cfg->bos_token_id);
		member_token(&m[n++], "eos_token_id", cfg->eos_token_id);
		member_token(&m[n++], "pad_token_id", cfg->pad_token_id);
		jb_object(&b, m, n);
		rc = write_json_in(dir, HF_GENERATION_CONFIG_FILE, &b, err);
	}
	hug_free(b.p);
	return rc;
}

/* ---- finding the weight files ---- */

/* "model-00001-of-00003.safetensors": the names hf_weights_save writes. */
static bool is_shard_name(const char *s)
{
	static const char pat[] = "model-#####-of-#####.safetensors";
	if (strlen(s) != sizeof(pat) - 1)
		return false;
	for (size_t i = 0; pat[i]; i++) {
		if (pat[i] == '#' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
			return false;
	}
	return true;
}

/* A shard name from an index must name a file in the directory itself. */
static bool shard_name_ok(const char *s)
{
	return *s && !strchr(s, '/') && !strchr(s, '\\') && !strstr(s, "..");
}

void hf_weight_files_free(struct hf_weight_files *wf)
{
	for (int i = 0; i < wf->n_files; i++)
		hug_free(wf->files[i]);
	for (int i = 0; i < wf->n_map; i++)
		hug_free(wf->map_names[i]);
	hug_free(wf->files);
	hug_free(wf->map_names);
	hug_free(wf->map_file);
	memset(wf, 0, sizeof(*wf));
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Index of `name` in wf->files, appending it when new. */
static int files_add(struct hf_weight_files *wf, const char *name)
{
	for (int i = 0; i < wf->n_files; i++)
		if (strcmp(wf->files[i], name) == 0)
			return i;
	wf->files = hug_realloc(wf->files, (size_t)(wf->n_files + 1) * sizeof(char *));
	wf->files[wf->n_files] = hug_strdup(name);
	return wf->n_files++;
}

/* Reads metadata.total_size, if any. */
static int index_total_size(const char *path, const cJSON *root,
			    struct hf_weight_files *wf, struct hug_error *err)
{
	const cJSON *meta, *ts;
	char got[96];
	wf->total_size = -1;
	if (json_member(path, root, "metadata", &meta, err))
		return -1;
	if (!meta || cJSON_IsNull(meta))
		return 0;
	if (!cJSON_IsObject(meta))
		return hug_error_set(err, "%s: metadata: expected an object, got %s",
				     path, hug_json_kind(meta));
	if (json_member(path, meta, "total_size", &ts, err))
		return -1;
	if (ts && !json_int_in(ts, 0, INT64_MAX, &wf->total_size))
		return hug_error_set(err, "%s: metadata.total_size: expected an integer >= 0, got %s",
				     path, hug_json_text(ts, got, sizeof(got)));
	return 0;
}

/* Fills wf from the index's weight_map. */
static int index_weight_map(const char *dir, const char *path, const cJSON *root,
			    struct hf_weight_files *wf, struct hug_error *err)
{
	const cJSON *map, *it;
	char got[96];
	if (json_member(path, root, "weight_map", &map, err))
		return -1;
	if (!map)
		return hug_error_set(err, "%s: weight_map: missing", path);
	if (!cJSON_IsObject(map))
		return hug_error_set(err, "%s: weight_map: expected an object, got %s",
				     path, hug_json_kind(map));
	int n = cJSON_GetArraySize(map);
	if (n == 0)
		return hug_error_set(err, "%s: weight_map: empty", path);
	wf->map_names = hug_calloc((size_t)n, sizeof(char *));
	wf->map_file = hug_calloc((size_t)n, sizeof(int));
	cJSON_ArrayForEach(it, map) {
		if (!cJSON_IsString(it))
			return hug_error_set(err, "%s: weight_map: %s: expected a shard file name, got %s",
					     path, it->string, hug_json_text(it, got, sizeof(got)));
		if (!shard_name_ok(it->valuestring))
			return hug_error_set(err, "%s: weight_map: %s: shard \"%s\" must be a file name in %s (no '/', '\\' or \"..\")",
					     path, it->string, it->valuestring, dir);
		wf->map_names[wf->n_map] = hug_strdup(it->string);
		wf->map_file[wf->n_map++] = files_add(wf, it->valuestring);
	}
	/* duplicates among the tensor names */
	char **sorted = hug_malloc((size_t)n * sizeof(char *));
	memcpy(sorted, wf->map_names, (size_t)n * sizeof(char *));
	qsort(sorted, (size_t)n, sizeof(char *), by_str);
	int rc = 0;
	for (int i = 1; i < n && rc == 0; i++)
		if (strcmp(sorted[i - 1], sorted[i]) == 0)
			rc = hug_error_set(err, "%s: weight_map: tensor %s listed twice",
					   path, sorted[i]);
	hug_free(sorted);
	return rc;
}

/* Every shard named by the index must be a regular file in dir. */
static int index_check_shards(const char *dir, const char *path,
			      const struct hf_weight_files *wf,
			      struct hug_error *err)
{
	for (int f = 0; f < wf->n_files; f++) {
		char *p = fs_join(dir, wf->files[f]);
		struct stat st;
		int e = stat(p, &st) == 0 ? 0 : errno;
		bool ok = e == 0 && S_ISREG(st.st_mode);
		hug_free(p);
		if (ok)
			continue;
		const char *example = "";
		for (int i = 0; i < wf->n_map; i++)
			if (wf->map_file[i] == f) {
				example = wf->map_names[i];
				break;
			}
		return hug_error_set(err, "%s: shard %s (holding %s) %s",
				     path, wf->files[f], example,
				     e == ENOENT ? "does not exist" : "is not a readable regular file");
	}
	return 0;
}

static int find_sharded(const char *dir, const char *path,
			struct hf_weight_files *wf, struct hug_error *err)
{
	cJSON *root;
	if (parse_json_object(path, &root, err))
		return -1;
	int rc = -1;
	wf->sharded = true;
	if (index_total_size(path, root, wf, err) ||
	    index_weight_map(dir, path, root, wf, err))
		goto delete_root;
	/* map_file indexes files in first-seen order: sort the files and
	 * renumber */
	char **old = hug_malloc((size_t)wf->n_files * sizeof(char *));
	memcpy(old, wf->files, (size_t)wf->n_files * sizeof(char *));
	qsort(wf->files, (size_t)wf->n_files, sizeof(char *), by_str);
	for (int i = 0; i < wf->n_map; i++)
		for (int f = 0; f < wf->n_files; f++)
			if (wf->files[f] == old[wf->map_file[i]]) {
				wf->map_file[i] = f;
				break;
			}
	hug_free(old);
	rc = index_check_shards(dir, path, wf, err);
delete_root:
	cJSON_Delete(root);
	return rc;
}

int hf_weights_find(const char *dir, struct hf_weight_files *wf,
		    struct hug_error *err)
{
	memset(wf, 0, sizeof(*wf));
	wf->total_size = -1;
	if (!fs_is_dir(dir))
		return hug_error_set(err, "%s: %s", dir,
				     fs_exists(dir) ? "not a directory" : "no such directory");
	char *single = fs_join(dir, HF_WEIGHTS_FILE);
	char *index = fs_join(dir, HF_WEIGHTS_INDEX_FILE);
	int rc = 0;
	if (fs_exists(single)) {
		files_add(wf, HF_WEIGHTS_FILE);
	} else if (fs_exists(index)) {
		rc = find_sharded(dir, index, wf, err);
	} else {
		char *bin = fs_join(dir, "pytorch_model.bin");
		rc = hug_error_set(err, "%s: no weights: neither %s nor %s exists%s",
				   dir, HF_WEIGHTS_FILE, HF_WEIGHTS_INDEX_FILE,
				   fs_exists(bin) ? " (pytorch_model.bin is not read by hug: convert it to safetensors)" : "");
		hug_free(bin);
	}
	if (rc)
		hf_weight_files_free(wf);
	hug_free(single);
	hug_free(index);
	return rc;
}

/* ---- loading ---- */

/* The registry name of a tensor stored as `name`: with the "transformer."
 * prefix. Returns 1 for the tied lm_head (ignored), 0 with buf filled, -1
 * when the name cannot be a parameter (too long). */
static int param_name(const char *name, char *buf, size_t n)
{
	if (strcmp(name, TIED_LM_HEAD) == 0)
		return 1;
	bool prefixed = strncmp(name, PREFIX, strlen(PREFIX)) == 0;
	int len = snprintf(buf, n, "%s%s", prefixed ? "" : PREFIX, name);
	return len < 0 || (size_t)len >= n ? -1 : 0;
}

/* Where each parameter comes from. */
struct load_plan {
	const struct st_tensor **src; /* per parameter, NULL until found */
	int *src_file;
};

static void shape_text(const int64_t *shape, int ndim, char *buf, size_t n)
{
	size_t off = (size_t)snprintf(buf, n, "[");
	for (int d = 0; d < ndim && off < n; d++)
		off += (size_t)snprintf(buf + off, n - off, "%s%" PRId64,
					d ? ", " : "", shape[d]);
	if (off < n)
		snprintf(buf + off, n - off, "]");
}

/* Matches one file tensor to its parameter, checking name, uniqueness,
 * dtype and shape. */
static int plan_tensor(const struct param_table *pt, const char *dir,
		       const struct hf_weight_files *wf, int f,
		       const struct st_tensor *t, struct load_plan *plan,
		       struct hug_error *err)
{
	char name[PARAM_NAME_MAX + 16], a[256], b[256];
	int k = param_name(t->name, name, sizeof(name));
	if (k == 1)
		return 0;
	struct param *p = k == 0 ? param_table_find(pt, name) : NULL;
	if (!p)
		return hug_error_set(err, "%s: unexpected tensor %s (not a parameter of this BLOOM model)",
				     t->path, t->name);
	int i = (int)(p - pt->items);
	if (plan->src[i])
		return hug_error_set(err, "%s: tensor %s given twice (as %s in %s and as %s in %s)",
				     dir, p->name, plan->src[i]->name,
				     wf->files[plan->src_file[i]], t->name, wf->files[f]);
	if (!dtype_is_float(t->dtype))
		return hug_error_set(err, "%s: %s: dtype %s, expected a float dtype (F32, F64, BF16 or F16)",
				     t->path, t->name, st_dtype_name(t->dtype));
	bool same = t->ndim == p->t->ndim;
	for (int d = 0; same && d < t->ndim; d++)
		same = t->shape[d] == p->t->shape[d];
	if (!same) {
		shape_text(t->shape, t->ndim, a, sizeof(a));
		shape_text(p->t->shape, p->t->ndim, b, sizeof(b));
		return hug_error_set(err, "%s: %s: shape %s, expected %s", t->path,
				     t->name, a, b);
	}
	plan->src[i] = t;
	plan->src_file[i] = f;
	return 0;
}

/* The index must not claim a tensor for a shard that lacks it. */
static int plan_check_index(const char *dir, const struct hf_weight_files *wf,
			    const struct st_file *sf, struct hug_error *err)
{
	for (int i = 0; i < wf->n_map; i++) {
		if (st_find(&sf[wf->map_file[i]], wf->map_names[i]))
			continue;
		return hug_error_set(err, "%s/%s: weight_map says %s is in %s, but that shard does not hold it",
				     dir, HF_WEIGHTS_INDEX_FILE, wf->map_names[i],
				     wf->files[wf->map_file[i]]);
	}
	return 0;
}

/* "model.safetensors", or the shard list (shortened when long). */
static void looked_in(const struct hf_weight_files *wf, char *buf, size_t n)
{
	if (!wf->sharded || wf->n_files > 3) {
		if (wf->sharded)
			snprintf(buf, n, "the %d shards listed in %s", wf->n_files,
				 HF_WEIGHTS_INDEX_FILE);
		else
			snprintf(buf, n, "%s", wf->files[0]);
		return;
	}
	size_t off = 0;
	buf[0] = '\0';
	for (int f = 0; f < wf->n_files && off < n; f++)
		off += (size_t)snprintf(buf + off, n - off, "%s%s", f ? ", " : "",
					wf->files[f]);
}

int hf_weights_load(struct param_table *pt, const char *dir, struct hug_error *err)
{
	struct hf_weight_files wf;
	char where[512];
	int rc = -1, opened = 0;
	if (hf_weights_find(dir, &wf, err))
		return -1;
	struct st_file *sf = hug_calloc((size_t)wf.n_files, sizeof(*sf));
	struct load_plan plan = {
		.src = hug_calloc((size_t)pt->n + 1, sizeof(*plan.src)),
		.src_file = hug_calloc((size_t)pt->n + 1, sizeof(int)),
	};
	for (; opened < wf.n_files; opened++) {
		char *p = fs_join(dir, wf.files[opened]);
		int e = st_open(&sf[opened], p, err);
		hug_free(p);
		if (e)
			goto close_files;
	}
	for (int f = 0; f < wf.n_files; f++)
		for (int k = 0; k < sf[f].n; k++)
			if (plan_tensor(pt, dir, &wf, f, &sf[f].tensors[k], &plan, err))
				goto close_files;
	if (wf.sharded && plan_check_index(dir, &wf, sf, err))
		goto close_files;
	for (int i = 0; i < pt->n; i++) {
		if (plan.src[i])
			continue;
		looked_in(&wf, where, sizeof(where));
		hug_error_set(err, "%s: missing tensor %s (looked in %s)", dir,
			      pt->items[i].name, where);
		goto close_files;
	}
	/* everything checked: now copy */
	for (int i = 0; i < pt->n; i++)
		if (st_tensor_load(plan.src[i], pt->items[i].t, err))
			goto close_files;
	rc = 0;
close_files:
	for (int f = 0; f < opened; f++)
		st_close(&sf[f]);
	hug_free(sf);
	hug_free(plan.src);
	hug_free(plan.src_file);
	hf_weight_files_free(&wf);
	return rc;
}

/* ---- saving ---- */

/* Removes files in dir that an earlier save wrote and this one did not:
 * the single file, the index, and shards not in keep[0..n_keep). */
static int remove_stale(const char *dir, bool keep_single, bool keep_index,
			char **keep, int n_keep, struct hug_error *err)
{
	const char *fixed[2] = { HF_WEIGHTS_FILE, HF_WEIGHTS_INDEX_FILE };
	const bool keep_fixed[2] = { keep_single, keep_index };
	for (int i = 0; i < 2; i++) {
		if (keep_fixed[i])
			continue;
		char *p = fs_join(dir, fixed[i]);
		int e = unlink(p) != 0 && errno != ENOENT ? errno : 0;
		hug_free(p);
		if (e)
			return hug_error_set(err, "%s/%s: cannot remove the stale file: %s",
					     dir, fixed[i], strerror(e));
	}
	DIR *d = opendir(dir);
	if (!d)
		return hug_error_set(err, "%s: cannot list: %s", dir, strerror(errno));
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d))) {
		if (!is_shard_name(e->d_name))
			continue;
		bool kept = false;
		for (int i = 0; i < n_keep && !kept; i++)
			kept = strcmp(keep[i], e->d_name) == 0;
		if (kept)
			continue;
		char *p = fs_join(dir, e->d_name);
		if (unlink(p) != 0 && errno != ENOENT)
			rc = hug_error_set(err, "%s: cannot remove the stale shard: %s",
					   p, strerror(errno));
		hug_free(p);
	}
	closedir(d);
	return rc;
}

/* Writes the parameters [lo, hi) of pt to dir/name. */
static int write_tensors(const struct param_table *pt, int lo, int hi,
			 const char *dir, const char *name, enum dtype disk,
			 struct hug_error *err)
{
	struct st_writer *w = st_writer_new();
	for (int i = lo; i < hi; i++)
		st_writer_add(w, pt->items[i].name, pt->items[i].t, disk);
	char *p = fs_join(dir, name);
	int rc = st_writer_write(w, p, err);
	hug_free(p);
	st_writer_free(w);
	return rc;
}

struct name_shard {
	const char *name;
	int shard;
};

static int by_ns_name(const void *a, const void *b)
{
	return strcmp(((const struct name_shard *)a)->name,
		      ((const struct name_shard *)b)->name);
}

/* The index: {"metadata": {"total_size": N}, "weight_map": {name: shard}},
 * names sorted, as transformers writes it. */
static int write_index(const struct param_table *pt, const int *shard_of,
		       char **shards, uint64_t total, const char *dir,
		       struct hug_error *err)
{
	struct name_shard *ns = hug_malloc((size_t)pt->n * sizeof(*ns) + 1);
	struct jbuf b = { 0 };
	for (int i = 0; i < pt->n; i++)
		ns[i] = (struct name_shard){ pt->items[i].name, shard_of[i] };
	qsort(ns, (size_t)pt->n, sizeof(*ns), by_ns_name);
	jb_printf(&b, "{\n  \"metadata\": {\n    \"total_size\": %" PRIu64 "\n  },\n  \"weight_map\": {\n", total);
	for (int i = 0; i < pt->n; i++) {
		jb_str(&b, "    ");
		jb_quote(&b, ns[i].name);
		jb_str(&b, ": ");
		jb_quote(&b, shards[ns[i].shard]);
		jb_str(&b, i + 1 < pt->n ? ",\n" : "\n");
	}
	jb_str(&b, "  }\n}\n");
	int rc = write_json_in(dir, HF_WEIGHTS_INDEX_FILE, &b, err);
	hug_free(b.p);
	hug_free(ns);
	return rc;
}

static int save_sharded(const struct param_table *pt, const char *dir,
			enum dtype disk, size_t max_shard_bytes, uint64_t total,
			struct hug_error *err)
{
	int *shard_of = hug_malloc((size_t)pt->n * sizeof(int) + 1);
	int n_shards = 0, rc = -1;
	uint64_t in_shard = 0;
	for (int i = 0; i < pt->n; i++) {
		uint64_t nb = (uint64_t)tensor_numel(pt->items[i].t) * dtype_size(disk);
		if (n_shards == 0 || (in_shard > 0 && in_shard + nb > max_shard_bytes)) {
			n_shards++;
			in_shard = 0;
		}
		shard_of[i] = n_shards - 1;
		in_shard += nb;
	}
	char **shards = hug_calloc((size_t)n_shards, sizeof(char *));
	for (int s = 0; s < n_shards; s++) {
		char name[64];
		snprintf(name, sizeof(name), "model-%05d-of-%05d.safetensors", s + 1, n_shards);
		shards[s] = hug_strdup(name);
	}
	for (int s = 0, lo = 0; s < n_shards; s++) {
		int hi = lo;
		while (hi < pt->n && shard_of[hi] == s)
			hi++;
		if (write_tensors(pt, lo, hi, dir, shards[s], disk, err))
			goto free_names;
		lo = hi;
	}
	if (write_index(pt, shard_of, shards, total, dir, err))
		goto free_names;
	rc = remove_stale(dir, false, true, shards, n_shards, err);
free_names:
	for (int s = 0; s < n_shards; s++)
		hug_free(shards[s]);
	hug_free(shards);
	hug_free(shard_of);
	return rc;
}

int hf_weights_save(const struct param_table *pt, const char *dir, enum dtype disk,
		    size_t max_shard_bytes, struct hug_error *err)
{
	if (!torch_dtype_name(disk))
		return hug_error_set(err, "%s: cannot save weights as %s (expected f32, f64, bf16 or f16)",
				     dir, dtype_name(disk));
	if (!fs_is_dir(dir))
		return hug_error_set(err, "%s: not a directory", dir);
	for (int i = 0; i < pt->n; i++)
		if (!dtype_is_float(pt->items[i].t->dtype))
			return hug_error_set(err, "%s: parameter %s is %s, not a float tensor",
					     dir, pt->items[i].name,
					     dtype_name(pt->items[i].t->dtype));
	uint64_t total = 0;
	for (int i = 0; i < pt->n; i++)
		total += (uint64_t)tensor_numel(pt->items[i].t) * dtype_size(disk);
	if (max_shard_bytes == 0 || total <= max_shard_bytes) {
		if (write_tensors(pt, 0, pt->n, dir, HF_WEIGHTS_FILE, disk, err))
			return -1;
		return remove_stale(dir, true, false, NULL, 0, err);
	}
	return save_sharded(pt, dir, disk, max_shard_bytes, total, err);
}

/* ---- whole directories ---- */

/* True for the files hf_bloom_save writes (and their ".tmp" leftovers). */
static bool is_own_file(const char *name)
{
	static const char *const own[] = {
		HF_CONFIG_FILE, HF_GENERATION_CONFIG_FILE, HF_WEIGHTS_FILE,
		HF_WEIGHTS_INDEX_FILE,
	};
	char base[256];
	size_t n = strlen(name);
	if (n >= sizeof(base))
		return false;
	memcpy(base, name, n + 1);
	if (n > 4 && strcmp(base + n - 4, ".tmp") == 0)
		base[n - 4] = '\0';
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (strcmp(base, own[i]) == 0)
			return true;
	return is_shard_name(base);
}

/* Removes directory `path` holding only files hf_bloom_save writes; any
 * other entry is left alone and reported. A missing path is fine. */
static int remove_own_dir(const char *path, struct hug_error *err)
{
	DIR *d = opendir(path);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return hug_error_set(err, "%s: cannot list: %s", path, strerror(errno));
	}
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (!is_own_file(e->d_name)) {
			rc = hug_error_set(err, "%s: holds %s, which hug did not write; not removing it (move it away and retry)",
					   path, e->d_name);
			break;
		}
		char *p = fs_join(path, e->d_name);
		if (unlink(p) != 0 && errno != ENOENT)
			rc = hug_error_set(err, "%s: cannot remove: %s", p, strerror(errno));
		hug_free(p);
	}
	closedir(d);
	if (rc == 0 && rmdir(path) != 0 && errno != ENOENT)
		rc = hug_error_set(err, "%s: cannot remove: %s", path, strerror(errno));
	return rc;
}

/* mkdir -p of every directory above `path` (not path itself). */
static int make_parents(const char *path, struct hug_error *err)
{
	char *parent = fs_parent(path);
	int rc = fs_make_dirs(parent, err);
	hug_free(parent);
	return rc;
}

/* Moves the entries of old_dir that hf_bloom_save does not write (a
 * tokenizer, a README) into new_dir, so replacing the directory keeps
 * them. */
static int carry_foreign(const char *old_dir, const char *new_dir,
			 struct hug_error *err)
{
	DIR *d = opendir(old_dir);
	if (!d)
		return hug_error_set(err, "%s: cannot list: %s", old_dir, strerror(errno));
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    is_own_file(e->d_name))
			continue;
		char *from = fs_join(old_dir, e->d_name);
		char *to = fs_join(new_dir, e->d_name);
		if (rename(from, to) != 0)
			rc = hug_error_set(err, "%s: cannot move it into %s: %s", from,
					   new_dir, strerror(errno));
		hug_free(from);
		hug_free(to);
	}
	closedir(d);
	return rc;
}

/* Replaces directory `dir` (which exists) by `tmp`, keeping the files hug
 * did not write, through fs_replace_dir. */
static int swap_into_place(const char *tmp, const char *dir, struct hug_error *err)
{
	if (carry_foreign(dir, tmp, err))
		return -1;
	return fs_replace_dir(tmp, dir, remove_own_dir, err);
}

/* Writes the whole directory into tmp (created here). */
static int save_into(const struct bloom_model *m, const char *tmp, enum dtype disk,
		     size_t max_shard_bytes, struct hug_error *err)
{
	if (mkdir(tmp, 0755) != 0)
		return hug_error_set(err, "%s: cannot create: %s", tmp, strerror(errno));
	if (hf_bloom_config_write(&m->cfg, disk, tmp, err) ||
	    hf_weights_save(&m->table, tmp, disk, max_shard_bytes, err))
		return -1;
	fs_sync_dir(tmp);
	return 0;
}

int hf_bloom_save(const struct bloom_model *m, const char *dir, enum dtype disk,
		  size_t max_shard_bytes, struct hug_error *err)
{
	char *d = hug_strdup(dir);
	size_t n = strlen(d);
	while (n > 1 && d[n - 1] == '/')
		d[--n] = '\0';
	char *tmp = fs_cat(d, ".tmp");
	struct stat st;
	int rc = -1;
	if (n == 0 || strcmp(d, "/") == 0 || strcmp(d, ".") == 0 ||
	    strcmp(d, "..") == 0 || (n >= 3 && strcmp(d + n - 3, "/..") == 0) ||
	    (n >= 2 && strcmp(d + n - 2, "/.") == 0)) {
		hug_error_set(err, "\"%s\": not a usable directory name to save into", dir);
		goto free_names;
	}
	if (lstat(d, &st) == 0 && !S_ISDIR(st.st_mode)) {
		hug_error_set(err, "%s: exists and is not a directory%s", d,
			      S_ISLNK(st.st_mode) ? " (a symbolic link: give the real path)" : "");
		goto free_names;
	}
	if (make_parents(d, err) || remove_own_dir(tmp, err))
		goto free_names;
	if (save_into(m, tmp, disk, max_shard_bytes, err)) {
		struct hug_error ignored = { 0 };
		remove_own_dir(tmp, &ignored);
		goto free_names;
	}
	if (fs_exists(d) ? swap_into_place(tmp, d, err) : fs_replace_dir(tmp, d, NULL, err))
		goto free_names;
	rc = 0;
free_names:
	hug_free(tmp);
	hug_free(d);
	return rc;
}

int hf_bloom_load(const char *dir, enum dtype dt, bool trainable,
		  struct bloom_model *m, struct hug_error *err)
{
	struct bloom_config cfg;
	memset(m, 0, sizeof(*m));
	if (dt != DT_F32 && dt != DT_F64)
		return hug_error_set(err, "%s: cannot load a model as %s (expected f32 or f64)",
				     dir, dtype_name(dt));
	if (!fs_is_dir(dir))
		return hug_error_set(err, "%s: %s", dir,
				     fs_exists(dir) ? "not a directory" : "no such directory");
	if (hf_bloom_config_read(dir, &cfg, err))
		return -1;
	bloom_model_init(m, &cfg, dt, trainable);
	if (hf_weights_load(&m->table, dir, err)) {
		bloom_model_free(m);
		return -1;
	}
	return 0;
}
