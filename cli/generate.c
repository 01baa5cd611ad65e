/* generate.c: `hug generate --model DIR --prompt-ids 1,2,3` or
 * `--prompt TEXT [--tokenizer T.json]`: continues a prompt with a BLOOM
 * checkpoint (KV cache; greedy, temperature, top-k, top-p; seeded) and
 * prints the new token ids, or the new text. `--adapter DIR` applies a
 * LoRA adapter in PEFT's layout (merged into the weights first);
 * `--device cuda` generates on a GPU. The timing (time to first token,
 * tokens/s) goes to stderr, so stdout holds the result alone. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../io/hf_checkpoint.h"
#include "../nn/generate.h"
#include "args.h"
#include "cli.h"
#include "device.h"
#include "load.h"
#include "sample.h"

/* Parses "1,2,3" into a new array; -1 with err naming the bad entry. */
static int parse_ids(const char *s, int32_t **out, int *n, struct hug_error *err)
{
	int cap = 16;
	*n = 0;
	*out = hug_malloc((size_t)cap * sizeof(int32_t));
	const char *p = s;
	while (*p) {
		char *end;
		errno = 0;
		long v = strtol(p, &end, 10);
		if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ','))
			return hug_error_set(err, "--prompt-ids: entry %d of \"%s\" is not a "
					     "non-negative integer", *n + 1, s);
		if (*n == cap)
			*out = hug_realloc(*out, (size_t)(cap *= 2) * sizeof(int32_t));
		(*out)[(*n)++] = (int32_t)v;
		p = *end ? end + 1 : end;
	}
	if (*n == 0)
		return hug_error_set(err, "--prompt-ids: expected ids like 1,2,3, got \"%s\"", s);
	return 0;
}

int cli_generate(int argc, char **argv)
{
	const char *model = NULL, *prompt = NULL, *text = NULL, *tok_path = NULL;
	const char *adapter = NULL, *device = NULL;
	struct gen_opts o = gen_opts_default();
	bool help = false, no_stop = false, no_special = false;
	double max_gib = GEN_DEFAULT_MAX_MEMORY / 1073741824.0;
	int stop_id = -2; /* the model's eos ids unless given */
	const struct arg_spec specs[] = {
		{ "model", ARG_STR, &model, "checkpoint directory (config.json + safetensors)" },
		{ "adapter", ARG_STR, &adapter, "LoRA adapter directory (PEFT layout) to apply" },
		{ "prompt-ids", ARG_STR, &prompt, "comma-separated prompt token ids" },
		{ "prompt", ARG_STR, &text, "prompt text (needs a tokenizer)" },
		{ "no-special-tokens", ARG_SWITCH, &no_special,
		  "encode --prompt without the special tokens the post_processor adds (BOS)" },
		{ "tokenizer", ARG_STR, &tok_path, "tokenizer.json (default: the adapter's, else MODEL/tokenizer.json)" },
		{ "max-new-tokens", ARG_INT, &o.max_new_tokens, "tokens to generate (32)" },
		{ "greedy", ARG_SWITCH, &o.greedy, "argmax decoding" },
		{ "temperature", ARG_DOUBLE, &o.temperature, "sampling temperature (1.0)" },
		{ "top-k", ARG_INT, &o.top_k, "keep the k most likely tokens (0: all)" },
		{ "top-p", ARG_DOUBLE, &o.top_p, "nucleus sampling mass (1.0: off)" },
		{ "seed", ARG_U64, &o.seed, "random seed (0)" },
		{ "device", ARG_STR, &device, "cpu (default), cuda or cuda:N" },
		{ "stop-id", ARG_INT, &stop_id,
		  "stop after this id (default: the model's eos ids, config.json and "
		  "generation_config.json)" },
		{ "no-stop", ARG_SWITCH, &no_stop, "never stop early" },
		{ "max-memory", ARG_DOUBLE, &max_gib, "GiB the prompt + new tokens may need (16)" },
		{ "help", ARG_SWITCH, &help, "show this help" },
	};
	const int n_specs = (int)(sizeof(specs) / sizeof(specs[0]));
	struct hug_error err = { 0 };
	const char *pos[1];
	int n_pos = 0;
	if (args_parse_cmd("generate", argc, argv, specs, n_specs, pos, 0, &n_pos))
		return 2;
	if (help || !model || !(prompt || text) || (prompt && text))
		return args_show_usage("usage: hug generate --model DIR (--prompt-ids 1,2,3 | --prompt TEXT) [options]\n",
				       specs, n_specs, help);
	int32_t *ids = NULL, *out = NULL;
	int n_ids = 0, rc = 2;
	struct model m = { 0 };
	struct tokenizer *tok = NULL;
	struct gen_timing timing = { 0 };
	bool loaded = false;
	o.max_memory = max_gib * 1073741824.0;
	o.timing = &timing;
	if ((prompt && parse_ids(prompt, &ids, &n_ids, &err)) || gen_opts_validate(&o, &err))
		goto done;
	if (text && cli_tokenizer_find(tok_path, model, adapter, &tok, &err))
		goto done;
	if (cli_model_load(model, adapter, &m, &err))
		goto done;
	loaded = true;
	/* refuse a request too long for memory before allocating for it (a
	 * text prompt's length is checked once tokenized) */
	struct model_config mc;
	model_config_of(&m, &mc);
	if (gen_check_size(&mc, n_ids, o.max_new_tokens, o.max_memory, &err) ||
	    cli_model_to_device(&m, device, &err))
		goto done;
	if (!no_stop && stop_id != -2 && gen_opts_add_stop(&o, stop_id)) {
		hug_error_set(&err, "--stop-id: expected a token id >= 0, got %d", stop_id);
		goto done;
	}
	if (!no_stop && stop_id == -2) {
		int more[GEN_MAX_STOP], n_more = 0;
		gen_opts_stop_at_eos(&o, &mc.dims);
		if (hf_generation_eos(model, more, GEN_MAX_STOP, &n_more, &err))
			goto done;
		for (int k = 0; k < n_more; k++)
			gen_opts_add_stop(&o, more[k]);
	}
	if (text) {
		struct buf res = { 0 };
		rc = sample_text(&m, tok, text, !no_special, &o, &res, &err) ? 1 : 0;
		if (!rc)
			printf("%s%s\n", text, res.p ? res.p : "");
		buf_free(&res);
	} else {
		out = hug_malloc((size_t)o.max_new_tokens * sizeof(int32_t));
		int n = model_generate(&m, ids, n_ids, &o, out, &err);
		if (n < 0)
			goto done;
		for (int i = 0; i < n; i++)
			printf("%s%d", i ? "," : "", out[i]);
		printf("\n");
		rc = 0;
	}
	if (!rc) {
		fflush(stdout);
		fprintf(stderr, "hug generate: %d new tokens in %.3f s (%.1f tokens/s), time to first "
			"token %.3f s\n", timing.n_new, timing.total_s,
			timing.total_s > 0 ? timing.n_new / timing.total_s : 0.0, timing.first_token_s);
	}
done:
	if (rc)
		fprintf(stderr, "hug generate: %s\n", err.msg);
	if (loaded)
		model_free(&m);
	tokenizer_free(tok);
	hug_free(ids);
	hug_free(out);
	return rc;
}
