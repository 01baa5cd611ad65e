/* plan.c: `hug plan RECIPE | --preset NAME [layout flags]`: the per-rank
 * memory and FLOPs plan (train/mem_plan.h) of training a model under a
 * layout: data x tensor x pipeline parallel, ZeRO stage, recomputation,
 * attention kind, precision, batch and sequence. Nothing is allocated, so
 * any size plans on any machine. Bad input is reported as "hug plan:
 * <message>" with exit status 2. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../base/json.h"
#include "../train/mem_plan.h"
#include "../train/recipe.h"
#include "args.h"
#include "cli.h"

struct plan_opts {
	const char *preset, *recompute, *attention, *dtype, *device;
	int world, tp, pp, zero, lora;
	int64_t batch, seq, accum, kv_batch, kv_len;
	bool help;
};

/* Layout flags over what the recipe or preset gave (-1 / NULL: keep). */
static int apply_flags(const struct plan_opts *o, struct mem_layout *l, struct hug_error *err)
{
	if (o->tp > 0)
		l->tp = o->tp;
	if (o->pp > 0)
		l->pp = o->pp;
	if (o->world > 0) {
		if (o->world % (l->tp * l->pp))
			return hug_error_set(err, "--world %d is not a multiple of --tp %d x --pp %d",
					     o->world, l->tp, l->pp);
		l->dp = o->world / (l->tp * l->pp);
	}
	if (o->zero >= 0)
		l->zero = o->zero;
	if (o->batch > 0)
		l->micro_batch = o->batch;
	if (o->seq > 0)
		l->seq_len = o->seq;
	if (o->accum > 0)
		l->accumulation = o->accum;
	if (o->kv_batch > 0)
		l->kv_batch = o->kv_batch;
	if (o->kv_len > 0)
		l->kv_len = o->kv_len;
	if (o->recompute) {
		if (!strcmp(o->recompute, "none"))
			l->recompute = MEM_RECOMPUTE_NONE;
		else if (!strcmp(o->recompute, "block"))
			l->recompute = MEM_RECOMPUTE_BLOCK;
		else if (!strcmp(o->recompute, "selective"))
			l->recompute = MEM_RECOMPUTE_SELECTIVE;
		else
			return hug_error_set(err, "--recompute: expected none, block or selective, "
					     "got \"%s\"", o->recompute);
	}
	if (o->attention) {
		if (!strcmp(o->attention, "exact"))
			l->attention = MEM_ATTN_EXACT;
		else if (!strcmp(o->attention, "flash"))
			l->attention = MEM_ATTN_FLASH;
		else
			return hug_error_set(err, "--attention: expected exact or flash, got \"%s\"",
					     o->attention);
	}
	if (o->dtype) {
		if (strcmp(o->dtype, "f32") && strcmp(o->dtype, "bf16"))
			return hug_error_set(err, "--dtype: expected f32 or bf16, got \"%s\"",
					     o->dtype);
		l->bf16 = !strcmp(o->dtype, "bf16");
	}
	if (o->device) {
		if (strcmp(o->device, "cpu") && strcmp(o->device, "cuda"))
			return hug_error_set(err, "--device: expected cpu or cuda, got \"%s\"",
					     o->device);
		l->cuda = !strcmp(o->device, "cuda");
	}
	return 0;
}

/* LoRA of rank r on the family's default targets, for a preset. */
static void preset_lora(const struct model_config *cfg, int r, struct mem_layout *l)
{
	struct model_linear lin;
	const char *const *t = cfg->family->lora_targets;
	l->lora_r = r;
	for (int k = 0; k < model_config_n_linear(cfg); k++) {
		model_config_linear(cfg, 0, k, &lin);
		for (int i = 0; t && t[i]; i++)
			if (!strcmp(t[i], lin.module)) {
				l->lora_n++;
				l->lora_out += lin.out;
				l->lora_in += lin.in;
				l->lora_params += (int64_t)cfg->dims.n_layer * r * (lin.in + lin.out);
			}
	}
}

static void print_header(const char *what, const struct model_config *cfg,
			 const struct mem_plan *p, const struct mem_layout *l)
{
	const struct model_dims *d = &cfg->dims;
	printf("%s: %s, %" PRId64 " parameters (%.3g B), %d layers, hidden %" PRId64
	       ", %d heads (%d key/value), vocab %" PRId64 "\n", what, cfg->family->display,
	       p->params_total, (double)p->params_total / 1e9, d->n_layer, d->hidden_size,
	       d->n_head, d->n_kv_head, d->vocab_size);
	printf("layout: %d GPUs/processes = %d data x %d tensor x %d pipeline; ZeRO-%d; micro "
	       "batch %" PRId64 " x %" PRId64 " tokens, accumulation %" PRId64 "%s\n",
	       l->dp * l->tp * l->pp, l->dp, l->tp, l->pp, l->zero, l->micro_batch, l->seq_len,
	       l->accumulation, l->lora_r ? "" : "; full fine-tuning");
	if (l->lora_r)
		printf("LoRA rank %d: %" PRId64 " trainable parameters (%.4f%%)\n", l->lora_r,
		       l->lora_params, 100.0 * (double)l->lora_params / (double)p->params_total);
}

int cli_plan(int argc, char **argv)
{
	struct plan_opts o = { .world = 0, .tp = 0, .pp = 0, .zero = -1 };
	const struct arg_spec specs[] = {
		{ "preset", ARG_STR, &o.preset, "a released model size instead of a recipe (bloom-7b1, llama-3.1-8b; hug info lists them)" },
		{ "world", ARG_INT, &o.world, "processes (GPUs) in all; dp = world / (tp x pp)" },
		{ "tp", ARG_INT, &o.tp, "tensor-parallel degree" },
		{ "pp", ARG_INT, &o.pp, "pipeline-parallel stages" },
		{ "zero", ARG_INT, &o.zero, "ZeRO stage 0-3 over the data-parallel ranks" },
		{ "recompute", ARG_STR, &o.recompute, "activation recomputation: none, block or selective" },
		{ "attention", ARG_STR, &o.attention, "exact (T x T probabilities kept) or flash (tiled)" },
		{ "dtype", ARG_STR, &o.dtype, "f32, or bf16 (bf16 compute, f32 master weights)" },
		{ "device", ARG_STR, &o.device, "cpu or cuda (the CPU attention kernel has a scratch)" },
		{ "batch", ARG_I64, &o.batch, "micro-batch size (sequences per rank)" },
		{ "seq", ARG_I64, &o.seq, "sequence length" },
		{ "accum", ARG_I64, &o.accum, "gradient accumulation steps" },
		{ "lora", ARG_INT, &o.lora, "with --preset: LoRA of this rank on the family's default targets" },
		{ "kv-batch", ARG_I64, &o.kv_batch, "sequences of the generation KV cache (default 1)" },
		{ "kv-len", ARG_I64, &o.kv_len, "positions of the generation KV cache (default --seq)" },
		{ "help", ARG_SWITCH, &o.help, "show this help" },
	};
	const int n_specs = (int)(sizeof(specs) / sizeof(specs[0]));
	const char *usage = "usage: hug plan RECIPE.json [flags]\n"
			    "       hug plan --preset NAME [flags]\n"
			    "Per-rank memory (parameters, gradients, optimizer state, activations, "
			    "logits, buffers,\nKV cache) and FLOPs per step; flags override the "
			    "recipe's layout.\n";
	const char *pos[1] = { NULL };
	int n_pos = 0;
	if (args_parse_cmd("plan", argc, argv, specs, n_specs, pos, 1, &n_pos))
		return args_show_usage(usage, specs, n_specs, false);
	if (o.help || (n_pos == 0) == (o.preset == NULL))
		return args_show_usage(usage, specs, n_specs, o.help);
	struct hug_error err = { 0 };
	struct model_config cfg;
	struct mem_layout l;
	struct recipe r;
	bool have_recipe = false;
	int rc = 2;
	hug_json_init();
	if (o.preset) {
		if (model_config_preset(o.preset, &cfg)) {
			hug_error_set(&err, "--preset: unknown model \"%s\" (hug info --preset "
				      "lists the known ones)", o.preset);
			goto out;
		}
		mem_layout_default(&l);
		l.cuda = true;
		if (o.lora > 0)
			preset_lora(&cfg, o.lora, &l);
	} else {
		int world = o.world > 0 ? o.world : 1;
		if (recipe_load(pos[0], NULL, 0, world, &r, &err))
			goto out;
		have_recipe = true;
		cfg = r.model;
		mem_layout_of_recipe(&r, world, &l);
		if (o.lora > 0) {
			hug_error_set(&err, "--lora: only with --preset (a recipe's peft object "
				      "sets LoRA)");
			goto out;
		}
	}
	if (apply_flags(&o, &l, &err) || mem_layout_validate(&cfg, &l, &err))
		goto out;
	struct mem_plan p;
	mem_plan_compute(&cfg, &l, &p);
	print_header(o.preset ? o.preset : pos[0], &cfg, &p, &l);
	mem_plan_print(&p, &l, 0, "", stdout);
	rc = 0;
out:
	if (err.set)
		fprintf(stderr, "hug plan: %s\n", err.msg);
	if (have_recipe)
		recipe_free(&r);
	return rc;
}
