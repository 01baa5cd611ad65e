/* info.c: `hug info`: describes a model directory (any family), a
 * config.json or a .safetensors file (the config's fields, the parameter
 * count, the weight files and, on request, every tensor), or a released
 * model size (`--preset bloom-560m`) without allocating it. Bad input is reported as
 * "hug info: <message>" on stderr with exit status 2. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../io/hf_checkpoint.h"
#include "../io/safetensors.h"
#include "args.h"
#include "cli.h"

/* "1,234,567" into buf; returns buf. */
static char *fmt_count(int64_t v, char *buf, size_t n)
{
	char digits[32];
	int len = snprintf(digits, sizeof(digits), "%" PRId64, v < 0 ? -v : v);
	size_t o = 0;
	if (v < 0 && o + 1 < n)
		buf[o++] = '-';
	for (int i = 0; i < len && o + 1 < n; i++) {
		if (i > 0 && (len - i) % 3 == 0 && o + 2 < n)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

/* "1.04 GiB" (or "512 bytes") into buf; returns buf. */
static char *fmt_human(uint64_t v, char *buf, size_t n)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	if (v < 1024) {
		snprintf(buf, n, "%" PRIu64 " bytes", v);
		return buf;
	}
	double x = (double)v / 1024;
	int u = 0;
	while (x >= 1024 && u < 3) {
		x /= 1024;
		u++;
	}
	snprintf(buf, n, "%.3g %s", x, units[u]);
	return buf;
}

/* "1,118,429,184 bytes (1.04 GiB)" into buf; returns buf. */
static char *fmt_bytes(uint64_t v, char *buf, size_t n)
{
	char c[40], h[40];
	fmt_count((int64_t)v, c, sizeof(c));
	if (v < 1024)
		snprintf(buf, n, "%s bytes", c);
	else
		snprintf(buf, n, "%s bytes (%s)", c, fmt_human(v, h, sizeof(h)));
	return buf;
}

static void print_config(const struct model_config *c, const char *source)
{
	char a[64], b[64], d[64];
	int64_t n = model_config_param_count(c);
	printf("config: %s\n", source);
	fflush(stdout);
	model_config_print(c, stdout);
	printf("parameters: %s (%s as f32, %s as bf16)\n", fmt_count(n, a, sizeof(a)),
	       fmt_human((uint64_t)n * 4, b, sizeof(b)),
	       fmt_human((uint64_t)n * 2, d, sizeof(d)));
}

static int fail(const struct hug_error *err)
{
	fprintf(stderr, "hug info: %s\n", err->msg);
	return 2;
}

/* Lists the tensors of one file. */
static void print_tensors(const struct st_file *f)
{
	int w = 0;
	for (int i = 0; i < f->n; i++) {
		int len = (int)strlen(f->tensors[i].name);
		w = len > w ? len : w;
	}
	for (int i = 0; i < f->n; i++) {
		const struct st_tensor *t = &f->tensors[i];
		char shape[256], nb[64];
		size_t o = (size_t)snprintf(shape, sizeof(shape), "[");
		for (int d = 0; d < t->ndim && o < sizeof(shape); d++)
			o += (size_t)snprintf(shape + o, sizeof(shape) - o, "%s%" PRId64,
					      d ? ", " : "", t->shape[d]);
		if (o < sizeof(shape))
			snprintf(shape + o, sizeof(shape) - o, "]");
		printf("    %-*s  %-4s  %-16s  %s bytes\n", w, t->name,
		       st_dtype_name(t->dtype), shape,
		       fmt_count((int64_t)t->nbytes, nb, sizeof(nb)));
	}
}

/* Sums over a file: elements (without tensors the family ignores, such as
 * a tied lm_head), bytes, dtypes. */
struct file_sums {
	int64_t numel;
	uint64_t bytes;
	const char *ignored;   /* the first ignored tensor seen, or NULL */
	bool dtypes[DT_COUNT];
};

/* `ignored`: the family's names of tensors that are not parameters
 * (NULL-terminated), or NULL. */
static void add_sums(const struct st_file *f, const char *const *ignored,
		     struct file_sums *s)
{
	for (int i = 0; i < f->n; i++) {
		const struct st_tensor *t = &f->tensors[i];
		int64_t numel = 1;
		for (int d = 0; d < t->ndim; d++)
			numel *= t->shape[d];
		s->bytes += t->nbytes;
		s->dtypes[t->dtype] = true;
		bool skip = false;
		for (int k = 0; ignored && ignored[k] && !skip; k++)
			if (strcmp(t->name, ignored[k]) == 0) {
				skip = true;
				s->ignored = ignored[k];
			}
		if (!skip)
			s->numel += numel;
	}
}

static void print_dtypes(const struct file_sums *s)
{
	const char *sep = "";
	for (int d = 0; d < DT_COUNT; d++)
		if (s->dtypes[d]) {
			printf("%s%s", sep, st_dtype_name((enum dtype)d));
			sep = ", ";
		}
}

/* The weights of `dir` against the config's parameter count. */
static int info_weights(const char *dir, const struct model_config *cfg,
			bool tensors)
{
	struct hug_error err = { 0 };
	struct hf_weight_files wf;
	struct file_sums sums = { 0 };
	char a[64], b[64];
	char *single = hug_malloc(strlen(dir) + 64), *index = hug_malloc(strlen(dir) + 64);
	struct stat st;
	sprintf(single, "%s/%s", dir, HF_WEIGHTS_FILE);
	sprintf(index, "%s/%s", dir, HF_WEIGHTS_INDEX_FILE);
	bool none = stat(single, &st) != 0 && stat(index, &st) != 0;
	hug_free(single);
	hug_free(index);
	if (none) {
		printf("weights: none in %s (no %s or %s)\n", dir, HF_WEIGHTS_FILE,
		       HF_WEIGHTS_INDEX_FILE);
		return 0;
	}
	if (hf_weights_find(dir, &wf, &err))
		return fail(&err);
	if (wf.sharded)
		printf("weights: %s, %d shard%s\n", HF_WEIGHTS_INDEX_FILE, wf.n_files,
		       wf.n_files == 1 ? "" : "s");
	else
		printf("weights:\n");
	int rc = 0;
	for (int i = 0; i < wf.n_files && rc == 0; i++) {
		struct st_file f;
		struct file_sums one = { 0 };
		if (st_open_in(&f, dir, wf.files[i], &err)) {
			rc = fail(&err);
			break;
		}
		/* the family's ignored names (a tied lm_head) are parameters of
		 * an untied model */
		const char *const *ign = cfg->dims.tie_word_embeddings ?
						 cfg->family->hf_names.ignored : NULL;
		add_sums(&f, ign, &one);
		add_sums(&f, ign, &sums);
		printf("  %s: %d tensors, %s, ", wf.files[i], f.n,
		       fmt_bytes(f.map_size, a, sizeof(a)));
		print_dtypes(&one);
		printf("\n");
		if (tensors)
			print_tensors(&f);
		st_close(&f);
	}
	if (rc == 0) {
		int64_t want = model_config_param_count(cfg);
		printf("tensor data: %s elements in ", fmt_count(sums.numel, a, sizeof(a)));
		print_dtypes(&sums);
		if (sums.ignored)
			printf(" (plus %s, tied to the embeddings and ignored)", sums.ignored);
		if (sums.numel == want)
			printf(", matching the config\n");
		else
			printf(", but the config needs %s: the weights do not fit this config\n",
			       fmt_count(want, b, sizeof(b)));
	}
	hf_weight_files_free(&wf);
	return rc;
}

static int info_safetensors(const char *path)
{
	struct hug_error err = { 0 };
	struct st_file f;
	struct file_sums s = { 0 };
	char a[64], b[64];
	if (st_open(&f, path, &err))
		return fail(&err);
	add_sums(&f, NULL, &s);
	int64_t numel = 0;
	for (int i = 0; i < f.n; i++) {
		int64_t n = 1;
		for (int d = 0; d < f.tensors[i].ndim; d++)
			n *= f.tensors[i].shape[d];
		numel += n;
	}
	printf("file: %s (%s)\n", path, fmt_bytes(f.map_size, a, sizeof(a)));
	printf("metadata:");
	for (int i = 0; i < f.n_meta; i++)
		printf(" %s=%s", f.meta_keys[i], f.meta_values[i]);
	printf("\ntensors: %d, %s elements, %s of data, ", f.n,
	       fmt_count(numel, a, sizeof(a)), fmt_bytes(s.bytes, b, sizeof(b)));
	print_dtypes(&s);
	printf("\n");
	print_tensors(&f);
	st_close(&f);
	return 0;
}

/* `dir` holds config.json (at `config`). */
static int info_model(const char *dir, const char *config, bool tensors)
{
	struct hug_error err = { 0 };
	struct model_config cfg;
	if (model_config_read(config, &cfg, &err))
		return fail(&err);
	print_config(&cfg, config);
	return info_weights(dir, &cfg, tensors);
}

static int info_path(const char *path, bool tensors)
{
	struct hug_error err = { 0 };
	struct stat st;
	if (stat(path, &st) != 0) {
		hug_error_set(&err, "%s: %s", path, strerror(errno));
		return fail(&err);
	}
	if (S_ISDIR(st.st_mode)) {
		char *config = hug_malloc(strlen(path) + sizeof(HF_CONFIG_FILE) + 1);
		sprintf(config, "%s/%s", path, HF_CONFIG_FILE);
		int rc;
		if (stat(config, &st) != 0) {
			hug_error_set(&err, "%s: no %s (is this a Hugging Face model directory?)",
				      path, HF_CONFIG_FILE);
			rc = fail(&err);
		} else {
			rc = info_model(path, config, tensors);
		}
		hug_free(config);
		return rc;
	}
	if (fs_ends_with(path, ".safetensors"))
		return info_safetensors(path);
	/* a config.json (or an index): describe it and its directory */
	const char *slash = strrchr(path, '/');
	char *dir = hug_strdup(slash ? path : ".");
	if (slash)
		dir[slash == path ? 1 : slash - path] = '\0';
	int rc;
	if (fs_ends_with(path, HF_WEIGHTS_INDEX_FILE)) {
		char *config = hug_malloc(strlen(dir) + sizeof(HF_CONFIG_FILE) + 1);
		sprintf(config, "%s/%s", dir, HF_CONFIG_FILE);
		rc = info_model(dir, config, tensors);
		hug_free(config);
	} else {
		rc = info_model(dir, path, tensors);
	}
	hug_free(dir);
	return rc;
}

static int info_preset(const char *name)
{
	struct model_config cfg;
	if (model_config_preset(name, &cfg) != 0) {
		fprintf(stderr, "hug info: unknown preset \"%s\" (known:", name);
		for (int f = 0; model_families[f]; f++)
			for (int i = 0; model_families[f]->presets && model_families[f]->presets[i]; i++)
				fprintf(stderr, " %s", model_families[f]->presets[i]);
		fprintf(stderr, ")\n");
		return 2;
	}
	char source[96];
	snprintf(source, sizeof(source), "preset %s", name);
	print_config(&cfg, source);
	return 0;
}

int cli_info(int argc, char **argv)
{
	bool tensors = false, help = false;
	const char *preset = NULL, *pos[1];
	int n_pos = 0;
	struct hug_error err = { 0 };
	const struct arg_spec specs[] = {
		{ "tensors", ARG_SWITCH, &tensors, "list every tensor: name, dtype, shape, bytes" },
		{ "preset", ARG_STR, &preset, "describe a released size instead of a path (bloom-560m ... bloom)" },
		{ "help", ARG_SWITCH, &help, "show this help" },
	};
	const int n_specs = (int)(sizeof(specs) / sizeof(specs[0]));
	if (args_parse(argc, argv, specs, n_specs, pos, 1, &n_pos, &err))
		return fail(&err);
	if (help) {
		printf("usage: hug info PATH [--tensors]\n"
		       "       hug info --preset NAME\n\n"
		       "PATH is a model directory, its config.json, or a .safetensors file\n"
		       "(whose tensors are always listed).\n\n");
		args_usage(specs, n_specs);
		return 0;
	}
	if (preset && n_pos > 0) {
		hug_error_set(&err, "give either PATH or --preset, not both");
		return fail(&err);
	}
	if (preset)
		return info_preset(preset);
	if (n_pos == 0) {
		hug_error_set(&err, "expected a PATH (a model directory, config.json or .safetensors file) or --preset NAME; see hug info --help");
		return fail(&err);
	}
	return info_path(pos[0], tensors);
}
