/* main.c: the hug command line: dispatches to subcommands. Only main()
 * turns errors into exit codes: 0 success, 1 failure at run time, 2 bad
 * usage or input. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct cli_command commands[] = {
	{ "help", "show this help", cli_help },
	{ "version", "print the version and the compiled-in backends", cli_version },
	{ "info", "describe a model directory, config.json, .safetensors file or preset", cli_info },
	{ "eval", "loss and perplexity of a checkpoint on token ids", cli_eval },
	{ "generate", "continue a prompt of token ids with a checkpoint", cli_generate },
	{ "tokenize", "text to token ids and back with a tokenizer.json", cli_tokenize },
	{ "tokenizer", "train a byte-level BPE tokenizer (tokenizer train)", cli_tokenizer },
	{ "prepare", "tokenize text or JSONL into HDF5 token shards", cli_prepare },
	{ "train", "train a model from a JSON recipe", cli_train },
	{ "export", "write a checkpoint for transformers / peft (hf, peft, merged)", cli_export },
	{ "plan", "per-rank memory and FLOPs of a training layout (recipe or preset)", cli_plan },
	{ "recipe", "validate a training recipe, or print the recipe key reference", cli_recipe },
	{ "plot", "draw the training curves of a run to a PNG or SVG", cli_plot },
};

static const int n_commands = (int)(sizeof(commands) / sizeof(commands[0]));

int cli_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("hug %s: train and fine-tune transformer language models\n\n"
	       "usage: hug <command> [options]\n\ncommands:\n", HUG_VERSION);
	for (int i = 0; i < n_commands; i++)
		printf("  %-10s %s\n", commands[i].name, commands[i].summary);
	printf("\nRun as `mpirun -np N hug <command> ...` for distributed jobs.\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		{
		cli_help(argc, argv);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
		cmd = "help";
	else if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V"))
		cmd = "version";
	for (int i = 0; i < n_commands; i++)
		if (!strcmp(cmd, commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "hug: unknown command '%s' (run `hug help` for the list)\n", cmd);
	return 2;
}
