/* export.c: `hug export CHECKPOINT --format hf|peft|merged --out DIR`:
 * writes what transformers and peft load as they are.
 *   hf      the model as a Hugging Face directory (config.json,
 *           generation_config.json, model.safetensors or shards with
 *           model.safetensors.index.json); for a LoRA checkpoint, its base
 *   peft    the adapter alone: adapter_config.json + adapter_model.safetensors
 *   merged  the base with the adapter merged in (W + scale B A), as hf
 * plus tokenizer.json when the checkpoint (or the base) has one.
 * CHECKPOINT is a training checkpoint, a Hugging Face model directory or a
 * PEFT adapter directory; the base of an adapter is --base, else its
 * adapter_config.json's base_model_name_or_path. */
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../io/dir_checksums.h"
#include "../io/hf_checkpoint.h"
#include "../peft/lora_io.h"
#include "args.h"
#include "cli.h"

#define TOKENIZER_FILE "tokenizer.json"
#define DEFAULT_SHARD_BYTES 5000000000LL /* transformers' "5GB" */

enum export_format { EXPORT_HF, EXPORT_PEFT, EXPORT_MERGED };

struct export_opts {
	const char *checkpoint, *out, *base, *base_name;
	enum export_format format;
	enum dtype dtype;
	int64_t max_shard_bytes;
};

static int parse_format(const char *s, enum export_format *f, struct hug_error *err)
{
	static const char *const names[] = { "hf", "peft", "merged" };
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, names[i])) {
			*f = (enum export_format)i;
			return 0;
		}
	return hug_error_set(err, "--format: expected hf, peft or merged, got \"%s\"", s);
}

static int parse_dtype(const char *s, enum dtype *dt, struct hug_error *err)
{
	static const struct {
		const char *name;
		enum dtype dt;
	} names[] = { { "f32", DT_F32 }, { "bf16", DT_BF16 }, { "f16", DT_F16 } };
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, names[i].name)) {
			*dt = names[i].dt;
			return 0;
		}
	return hug_error_set(err, "--dtype: expected f32, bf16 or f16, got \"%s\"", s);
}

/* The directory of the base model of an adapter checkpoint. */
static int base_dir(const struct export_opts *o, char **dir, struct hug_error *err)
{
	if (o->base) {
		*dir = hug_strdup(o->base);
		return 0;
	}
	struct lora_config c;
	char *path = fs_join(o->checkpoint, LORA_CONFIG_FILE);
	int rc = lora_config_read(path, &c, err);
	if (!rc && (!c.base_model || !fs_is_dir(c.base_model)))
		rc = hug_error_set(err, "%s: base_model_name_or_path %s%s%s is not a directory "
				   "here: give the base model with --base DIR", path,
				   c.base_model ? "\"" : "", c.base_model ? c.base_model : "null",
				   c.base_model ? "\"" : "");
	*dir = rc ? NULL : hug_strdup(c.base_model);
	if (!rc)
		lora_config_free(&c);
	hug_free(path);
	return rc;
}

/* Copies tokenizer.json from the checkpoint, else from the base, if any. */
static int copy_tokenizer(const char *ckpt, const char *base, const char *out,
			  struct hug_error *err)
{
	const char *from[2] = { ckpt, base };
	for (int i = 0; i < 2; i++) {
		if (!from[i])
			continue;
		char *src = fs_join(from[i], TOKENIZER_FILE), *buf = NULL;
		size_t len = 0;
		int rc = fs_exists(src) ? fs_read_file(src, (size_t)1 << 30, &buf, &len, err) : 1;
		hug_free(src);
		if (rc < 0)
			return -1;
		if (rc > 0)
			continue;
		char *dst = fs_join(out, TOKENIZER_FILE);
		rc = fs_write_atomic(dst, buf, len, err);
		hug_free(dst);
		hug_free(buf);
		return rc;
	}
	return 0;
}

/* Loads what the format needs and writes it. Returns the exit code: 0, 2
 * for input that cannot be used, 1 when writing fails. */
static int run_export(const struct export_opts *o, struct hug_error *err)
{
	bool adapter = lora_dir_has_adapter(o->checkpoint);
	if (!adapter && o->format != EXPORT_HF) {
		hug_error_set(err, "%s: no %s here: --format %s needs a LoRA checkpoint or "
			      "adapter (for a whole model use --format hf)", o->checkpoint,
			      LORA_CONFIG_FILE, o->format == EXPORT_PEFT ? "peft" : "merged");
		return 2;
	}
	char *base = NULL;
	if (adapter && base_dir(o, &base, err))
		return 2;
	struct model m = { 0 };
	struct lora_model lm = { 0 };
	/* a checkpoint hug wrote carries checksums (lora_load checks an adapter's) */
	if ((!adapter && dir_checksums_check(o->checkpoint, NULL, err)) ||
	    hf_model_load(adapter ? base : o->checkpoint, DT_F32, false, &m, err)) {
		hug_free(base);
		return 2;
	}
	int rc = 2;
	if (adapter && lora_load(&lm, &m, o->checkpoint, false, err))
		goto out;
	rc = 1;
	if (o->format == EXPORT_PEFT) {
		if (o->base_name)
			lora_config_set_base(&lm.cfg, o->base_name);
		if (fs_make_dirs(o->out, err) || lora_save(&lm, o->out, o->dtype, err))
			goto out;
	} else {
		if (o->format == EXPORT_MERGED)
			lora_merge(&lm);
		if (hf_model_save(&m, o->out, o->dtype, (size_t)o->max_shard_bytes, err))
			goto out;
	}
	if (copy_tokenizer(o->checkpoint, base, o->out, err) == 0)
		rc = 0;
out:
	lora_model_free(&lm);
	model_free(&m);
	hug_free(base);
	return rc;
}

static void usage(const struct arg_spec *specs, int n)
{
	printf("usage: hug export CHECKPOINT --format hf|peft|merged --out DIR [options]\n"
	       "  hf: the model (a LoRA checkpoint's base) as a Hugging Face directory;\n"
	       "  peft: the adapter in PEFT's layout; merged: base + adapter merged, as hf\n");
	args_usage(specs, n);
}

int cli_export(int argc, char **argv)
{
	const char *format = NULL, *dtype = "f32";
	struct export_opts o = { .max_shard_bytes = DEFAULT_SHARD_BYTES };
	bool help = false;
	const struct arg_spec specs[] = {
		{ "format", ARG_STR, &format, "hf, peft or merged" },
		{ "out", ARG_STR, &o.out, "output directory (created; replaced atomically for hf/merged)" },
		{ "dtype", ARG_STR, &dtype, "f32, bf16 or f16 (f32)" },
		{ "max-shard-bytes", ARG_I64, &o.max_shard_bytes,
		  "shard weights above this size, with an index (5000000000; 0: never)" },
		{ "base", ARG_STR, &o.base, "base model of an adapter (default: its base_model_name_or_path)" },
		{ "base-name", ARG_STR, &o.base_name, "peft: base_model_name_or_path to write" },
		{ "help", ARG_SWITCH, &help, "show this help" },
	};
	const int n_specs = (int)(sizeof(specs) / sizeof(specs[0]));
	struct hug_error err = { 0 };
	const char *pos[1];
	int n_pos = 0;
	if (args_parse(argc, argv, specs, n_specs, pos, 1, &n_pos, &err) == 0 && !help &&
	    (n_pos != 1 || !format || !o.out))
		hug_error_set(&err, "expected CHECKPOINT, --format and --out (see --help)");
	if (help) {
		usage(specs, n_specs);
		return 0;
	}
	o.checkpoint = pos[0];
	if (err.set || parse_format(format, &o.format, &err) || parse_dtype(dtype, &o.dtype, &err) ||
	    (o.max_shard_bytes < 0 &&
	     hug_error_set(&err, "--max-shard-bytes: expected a number >= 0") < 0)) {
		fprintf(stderr, "hug export: %s\n", err.msg);
		return 2;
	}
	int rc = run_export(&o, &err);
	if (rc) {
		fprintf(stderr, "hug export: %s\n", err.msg);
		return rc;
	}
	printf("hug export: wrote %s (%s, %s)\n", o.out, format, dtype);
	return 0;
}
