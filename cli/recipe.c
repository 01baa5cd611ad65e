/* recipe.c: `hug recipe check R [--set k=v ...] [--world N]` validates a
 * recipe (LoRA targets against the model included) and prints the
 * effective recipe as JSON, every default filled in; `hug recipe docs`
 * prints the table of every key (the one in docs/recipes.md). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../train/recipe.h"
#include "args.h"
#include "cli.h"

static const char usage[] =
	"usage: hug recipe check RECIPE.json [--set key=value ...] [--world N]\n"
	"       hug recipe docs\n"
	"check validates the recipe as `hug train` would (with N processes) and prints\n"
	"the effective recipe, every default filled in, as JSON.\n";

int cli_recipe(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "docs")) {
		recipe_write_docs(stdout);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "check")) {
		fputs(usage, stderr);
		return 2;
	}
	struct arg_list ov = { hug_calloc((size_t)argc, sizeof(char *)), 0 };
	int world = 1, n_pos = 0, rc = 2;
	bool help = false;
	const char *path = NULL, *world_s = NULL;
	const struct arg_spec specs[] = {
		{ "set", ARG_LIST, &ov, "override a recipe key (repeatable)" },
		{ "world", ARG_STR, &world_s, "processes the job will run on (1)" },
		{ "help", ARG_SWITCH, &help, "show this help" },
	};
	const int n_specs = (int)(sizeof(specs) / sizeof(specs[0]));
	if (args_parse_cmd("recipe", argc - 1, argv + 1, specs, n_specs, &path, 1, &n_pos))
		goto out;
	if (help || !path) {
		rc = args_show_usage(usage, specs, n_specs, help);
		goto out;
	}
	if (world_s) {
		char *end = NULL;
		errno = 0;
		long v = strtol(world_s, &end, 10);
		if (errno || end == world_s || *end || v < 1 || v > INT32_MAX) {
			fprintf(stderr, "hug recipe: --world: expected a positive integer, got \"%s\"\n",
				world_s);
			goto out;
		}
		world = (int)v;
	}
	struct recipe r;
	struct hug_error err = { 0 };
	if (recipe_load(path, ov.v, ov.n, world, &r, &err)) {
		fprintf(stderr, "hug recipe: %s\n", err.msg);
		goto out;
	}
	char *json = recipe_effective_json(&r);
	printf("%s\n", json);
	hug_free(json);
	recipe_free(&r);
	rc = 0;
out:
	hug_free(ov.v);
	return rc;
}
