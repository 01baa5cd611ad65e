/* recipe_schema.c: every recipe key, its default and its meaning. */
#include "recipe_schema.h"

#include <math.h>
#include <string.h>

#define BIG 1e300
#define NUM(p, d, lo, hi, open, doc) { p, RK_NUMBER, d, false, lo, hi, open, NULL, doc }
#define INT(p, d, lo, hi, doc) { p, RK_INT, d, false, lo, hi, false, NULL, doc }

const struct rkey recipe_keys[] = {
	{ "model", RK_OBJECT, NULL, false, 0, 0, false, NULL,
	  "The model: a family (`arch`) and its configuration, or `from_pretrained` a Hugging Face directory." },
	{ "model.arch", RK_STRING, "\"bloom\"", false, 0, 0, false, NULL,
	  "Model family (nn/model_families.c): `bloom`. With from_pretrained, config.json's "
	  "model_type picks the family and model.arch, if given, must agree." },
	{ "model.from_pretrained", RK_STRING, "null", true, 0, 0, false, NULL,
	  "Start from this Hugging Face model directory (config.json + safetensors); its config "
	  "gives the sizes, so the size keys must be absent." },
	INT("model.vocab_size", NULL, 1, 2147483647, "Vocabulary size V (required without from_pretrained)."),
	INT("model.hidden_size", NULL, 1, BIG, "Hidden size C (required without from_pretrained)."),
	INT("model.n_layer", NULL, 1, 100000, "Number of blocks (required without from_pretrained)."),
	INT("model.n_head", NULL, 1, 100000, "Attention heads; must divide hidden_size (required without from_pretrained)."),
	NUM("model.layer_norm_epsilon", "1e-5", 0, 1, true, "LayerNorm epsilon."),
	{ "model.apply_residual_connection_post_layernorm", RK_BOOL, "false", false, 0, 0, false, NULL,
	  "Take residuals from the LayerNorm outputs instead of the block inputs." },
	NUM("model.hidden_dropout", "0.0", 0, 0.999, false, "Dropout after the attention output and the MLP."),
	NUM("model.attention_dropout", "0.0", 0, 0.999, false, "Dropout on the attention probabilities."),
	NUM("model.initializer_range", "0.02", 0, 10, false,
	    "Std of the normal initialisation of weights (BigScience used 0.0048 for bloom-560m)."),
	{ "model.intermediate_size", RK_INT, "null", true, 1, BIG, false, NULL,
	  "Llama-style families (llama, qwen2, qwen3, mistral): the MLP's inner width; null: 4 x hidden_size." },
	{ "model.num_key_value_heads", RK_INT, "null", true, 1, 100000, false, NULL,
	  "Llama-style families: key/value heads (grouped-query attention), a divisor of n_head; null: n_head." },
	{ "model.head_dim", RK_INT, "null", true, 2, 65536, false, NULL,
	  "Llama-style families: the width of a head (even); null: hidden_size / n_head." },
	{ "model.rms_norm_eps", RK_NUMBER, "null", true, 0, 1, true, NULL,
	  "Llama-style families: RMSNorm epsilon; null: 1e-6 (transformers' default)." },
	{ "model.rope_theta", RK_NUMBER, "null", true, 0, BIG, true, NULL,
	  "Llama-style families: the rotary base; null: 10000." },
	{ "model.max_position_embeddings", RK_INT, "null", true, 1, BIG, false, NULL,
	  "Llama-style families: written to config.json; null: the class default." },
	{ "model.tie_word_embeddings", RK_BOOL, "null", true, 0, 0, false, NULL,
	  "Llama-style families: lm_head shares the embedding matrix; null: false (BLOOM always ties)." },
	{ "model.attention_bias", RK_BOOL, "null", true, 0, 0, false, NULL,
	  "llama, qwen3: biases on q/k/v/o_proj; null: false (qwen2 always has q/k/v biases)." },
	{ "model.mlp_bias", RK_BOOL, "null", true, 0, 0, false, NULL,
	  "llama: biases on gate/up/down_proj; null: false." },
	{ "model.sliding_window", RK_INT, "null", true, 1, BIG, false, NULL,
	  "mistral: each query sees the last sliding_window keys; null: 4096 (MistralConfig's default)." },
	INT("model.max_seq_len", "2048", 2, BIG, "Longest sequence the model is trained for; data.seq_len may not exceed it."),
	INT("model.bos_token_id", "1", 0, 2147483647, "Written to config.json."),
	INT("model.eos_token_id", "2", 0, 2147483647, "Written to config.json; generation stops on it."),
	INT("model.pad_token_id", "3", 0, 2147483647, "Written to config.json."),

	{ "data", RK_OBJECT, NULL, false, 0, 0, false, NULL, "Token shards (see docs/shard-format.md)." },
	{ "data.train", RK_SOURCES, NULL, false, 0, 0, false, NULL,
	  "Training blend: [{\"path\": \"shards/fr/*.h5\", \"weight\": 0.13}, ...]; weights are relative." },
	{ "data.valid", RK_SOURCES, "null", true, 0, 0, false, NULL,
	  "Validation shards [{\"path\": ...}]; null holds out `valid_fraction` of the training samples." },
	NUM("data.valid_fraction", "0.0", 0, 0.5, false, "Share of each training source held out for validation when `valid` is null."),
	INT("data.seq_len", NULL, 2, BIG, "Tokens per training sample (required)."),
	{ "data.packing", RK_ENUM, "\"none\"", false, 0, 0, false, "none|document",
	  "none: a sample attends across the documents it holds; document: each token attends only "
	  "within its document (documents end at the shards' EOS), positions restart per document "
	  "and the EOS token predicts nothing, so every document trains as if alone." },
	{ "data.tokenizer", RK_STRING, "null", true, 0, 0, false, NULL,
	  "tokenizer.json used to make the shards: checked against their tokenizer hash, copied to "
	  "checkpoints and used to decode samples." },

	{ "optim", RK_OBJECT, NULL, false, 0, 0, false, NULL, "The optimizer." },
	{ "optim.name", RK_ENUM, "\"adamw\"", false, 0, 0, false, "adamw|sgd", "AdamW (decoupled decay) or SGD with momentum." },
	NUM("optim.lr", NULL, 0, 10, true, "Peak learning rate (required)."),
	{ "optim.betas", RK_NUMBERS, "[0.9, 0.95]", false, 0, 0.999999, false, NULL, "AdamW betas [beta1, beta2]." },
	NUM("optim.eps", "1e-8", 0, 1, true, "AdamW epsilon."),
	NUM("optim.weight_decay", "0.1", 0, 10, false, "Weight decay (not on biases and LayerNorm weights)."),
	NUM("optim.momentum", "0.0", 0, 0.999999, false, "SGD momentum."),
	{ "optim.nesterov", RK_BOOL, "false", false, 0, 0, false, NULL, "SGD Nesterov momentum." },
	NUM("optim.grad_clip", "1.0", 0, BIG, false, "Clip the global gradient norm to this (0: off)."),
	{ "optim.no_decay", RK_STRINGS, "null", true, 0, 0, false, NULL,
	  "fnmatch patterns of parameter names without weight decay; null: biases and LayerNorm weights." },

	{ "schedule", RK_OBJECT, "{}", false, 0, 0, false, NULL, "Learning-rate schedule (see optim/schedule.h for the formula)." },
	INT("schedule.warmup_steps", "0", 0, BIG, "Linear warmup from 0 to optim.lr over this many steps."),
	{ "schedule.decay", RK_ENUM, "\"cosine\"", false, 0, 0, false, "cosine|linear|constant", "Decay after warmup." },
	NUM("schedule.min_lr", "0.0", 0, 10, false, "Learning rate at the end of the decay."),
	{ "schedule.decay_steps", RK_INT, "null", true, 1, BIG, false, NULL, "Step where the decay ends; null: train.steps." },
	{ "schedule.rampup", RK_OBJECT, "null", true, 0, 0, false, NULL,
	  "Megatron batch-size ramp-up {\"start\", \"increment\", \"samples\"}; null: none." },
	INT("schedule.rampup.start", NULL, 1, BIG, "Global batch size at the start."),
	INT("schedule.rampup.increment", NULL, 1, BIG, "Batch size added at each ramp step."),
	INT("schedule.rampup.samples", NULL, 1, BIG, "Samples over which the batch reaches batch.global_batch_size."),

	{ "batch", RK_OBJECT, "{}", false, 0, 0, false, NULL, "Batch sizes, in sequences." },
	INT("batch.micro_batch_size", "8", 1, BIG, "Sequences per forward/backward on one process."),
	INT("batch.global_batch_size", "32", 1, BIG,
	    "Sequences per optimizer step over all processes; a multiple of micro_batch_size x data-parallel ranks."),

	{ "device", RK_ENUM, "\"cpu\"", false, 0, 0, false, "cpu|cuda", "Where to compute; cuda: one GPU per process (the node-local rank's)." },
	{ "precision", RK_ENUM, "\"f32\"", false, 0, 0, false, "f32|bf16", "Compute precision; bf16 (device cuda only) computes in bf16 from f32 master weights and optimizer state." },

	{ "parallel", RK_OBJECT, "{}", false, 0, 0, false, NULL, "Parallel layout; data parallel degree = processes / (tensor x pipeline)." },
	INT("parallel.tensor", "1", 1, 4096, "Tensor-parallel degree (Megatron)."),
	INT("parallel.zero", "0", 0, 3, "1: shard the optimizer state across data-parallel ranks (ZeRO-1); 2: also the gradients, reduce-scattered block by block during backward (ZeRO-2); 3: also the parameters, each block gathered just before use (ZeRO-3)."),
	INT("parallel.pipeline", "1", 1, 4096, "Pipeline stages (1F1B schedule); data parallel degree = processes / (tensor x pipeline); rank order: tensor innermost, then data, then pipeline."),
	{ "parallel.pipeline_layers", RK_NUMBERS, "null", true, 1, BIG, false, NULL,
	  "Blocks per pipeline stage, one whole number per stage summing to the model's layers; null: balanced by parameter count." },

	{ "peft", RK_OBJECT, "null", true, 0, 0, false, NULL, "LoRA adapters; null trains every parameter." },
	{ "peft.type", RK_ENUM, "\"lora\"", false, 0, 0, false, "lora", "Adapter type." },
	INT("peft.r", "8", 1, 65536, "LoRA rank."),
	NUM("peft.alpha", "8.0", 0, BIG, true, "LoRA alpha: scale alpha / r (alpha / sqrt(r) with rslora)."),
	NUM("peft.dropout", "0.0", 0, 0.999, false, "Dropout on the adapter input."),
	{ "peft.rslora", RK_BOOL, "false", false, 0, 0, false, NULL, "Rank-stabilised scaling." },
	{ "peft.target_modules", RK_STRINGS, "[]", false, 0, 0, false, NULL,
	  "Linear layers that get adapters, by name or pattern ([]: the family's PEFT default: `query_key_value` for BLOOM, `q_proj` and `v_proj` for Llama, Qwen2, Qwen3 and Mistral; `\"all-linear\"`: every linear layer of the blocks)." },

	{ "train", RK_OBJECT, NULL, false, 0, 0, false, NULL, "The run." },
	INT("train.steps", NULL, 1, BIG, "Optimizer steps (required)."),
	INT("train.log_every", "10", 1, BIG, "Steps between log lines and metrics.jsonl records."),
	INT("train.eval_every", "0", 0, BIG, "Steps between validation passes (0: only at the end)."),
	INT("train.eval_batches", "8", 1, BIG, "Micro-batches per validation pass, in all (shared by the data-parallel ranks)."),
	INT("train.save_every", "0", 0, BIG, "Steps between checkpoints (0: only at the end)."),
	INT("train.keep_last", "3", 0, BIG, "Checkpoints kept (0: all)."),
	{ "train.out_dir", RK_STRING, "\"runs/hug\"", false, 0, 0, false, NULL, "Run directory: checkpoints, metrics.jsonl." },
	INT("train.seed", "1234", 0, 9007199254740991.0, "Seed of initialisation, data order and dropout."),
	{ "train.skip_nonfinite", RK_BOOL, "false", false, 0, 0, false, NULL,
	  "Skip a step whose loss or gradient is not finite instead of stopping." },
	INT("train.max_skipped_steps", "10", 1, 1000000, "With skip_nonfinite: stop with an error after this many consecutive skipped steps (a finite step resets the count)."),
	{ "train.peak_tflops", RK_NUMBER, "null", true, 0, BIG, true, NULL,
	  "Peak TFLOP/s of one device, for MFU in the logs; null: MFU not reported." },
	INT("train.sample_tokens", "0", 0, 100000, "Tokens generated for each sample prompt at the end (needs data.tokenizer)."),
	{ "train.sample_prompts", RK_STRINGS, "[]", false, 0, 0, false, NULL, "Prompts for the end-of-run samples." },
	{ "train.activation_checkpointing", RK_ENUM, "\"none\"", false, 0, 0, false, "none|block|selective",
	  "Activation recomputation: `block` keeps only each block's input and recomputes the block in backward; "
	  "`selective` recomputes attention (its probabilities are not kept) and the MLP activation. "
	  "Gradients are the same bits either way; it trades compute for memory." },
	{ "train.tensorboard", RK_BOOL, "true", false, 0, 0, false, NULL,
	  "Also write TensorBoard event files (scalars of metrics.jsonl, the samples as text) into out_dir." },
};

const int recipe_n_keys = (int)(sizeof(recipe_keys) / sizeof(recipe_keys[0]));

const struct rkey *rkey_find(const char *path)
{
	for (int i = 0; i < recipe_n_keys; i++)
		if (!strcmp(recipe_keys[i].path, path))
			return &recipe_keys[i];
	return NULL;
}

static int edit_distance(const char *a, const char *b)
{
	int la = (int)strlen(a), lb = (int)strlen(b);
	if (la > 63 || lb > 63)
		return 1000;
	int d[64][64];
	for (int i = 0; i <= la; i++)
		d[i][0] = i;
	for (int j = 0; j <= lb; j++)
		d[0][j] = j;
	for (int i = 1; i <= la; i++)
		for (int j = 1; j <= lb; j++) {
			int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
			d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
	return d[la][lb];
}

const struct rkey *rkey_suggest(const char *path)
{
	const struct rkey *best = NULL;
	int best_d = 1000, limit = (int)strlen(path) / 3;
	if (limit > 3)
		limit = 3;
	if (limit < 1)
		limit = 1;
	for (int i = 0; i < recipe_n_keys; i++) {
		int d = edit_distance(path, recipe_keys[i].path);
		if (d < best_d) {
			best_d = d;
			best = &recipe_keys[i];
		}
	}
	return best_d <= limit ? best : NULL;
}

const char *rkey_type_name(enum rkey_type t)
{
	switch (t) {
	case RK_OBJECT: return "an object";
	case RK_INT: return "an integer";
	case RK_NUMBER: return "a number";
	case RK_STRING: return "a string";
	case RK_BOOL: return "true or false";
	case RK_ENUM: return "one of";
	case RK_NUMBERS: return "an array of numbers";
	case RK_STRINGS: return "an array of strings";
	case RK_SOURCES: return "an array of {\"path\": ..., \"weight\": ...}";
	}
	return "?";
}
