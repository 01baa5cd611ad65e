/* recipe.c: `hug recipe check R [--set k=v ...]` validates a recipe and
 * prints the effective JSON; `hug recipe docs` prints the table of every
 * key (the one in docs/recipes.md). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../train/recipe.h"
#include "cli.h"

int cli_recipe(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "docs")) {
		recipe_write_docs(stdout);
		return 0;
	}
	if (argc < 3 || strcmp(argv[1], "check")) {
		fprintf(stderr, "usage: hug recipe check RECIPE.json [--set key=value ...] [--world N]\n"
				"       hug recipe docs\n");
		return 2;
	}
	const char **ov = hug_calloc((size_t)argc, sizeof(char *));
	int n_ov = 0, world = 1, rc = 2;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--set") && i + 1 < argc) {
			ov[n_ov++] = argv[++i];
		} else if (!strcmp(argv[i], "--world")) {
			const char *w = i + 1 < argc ? argv[++i] : NULL;
			char *end = NULL;
			errno = 0;
			long v = w ? strtol(w, &end, 10) : 0;
			if (!w || errno || end == w || *end || v < 1 || v > INT32_MAX) {
				fprintf(stderr, "hug recipe: --world: expected a positive integer, got \"%s\"\n",
					w ? w : "nothing");
				goto out;
			}
			world = (int)v;
		} else {
			fprintf(stderr, "hug recipe: unexpected argument \"%s\"\n", argv[i]);
			goto out;
		}
	}
	struct recipe r;
	struct hug_error err = { 0 };
	if (recipe_load(argv[2], ov, n_ov, world, &r, &err)) {
		fprintf(stderr, "hug recipe: %s\n", err.msg);
		goto out;
	}
	printf("%s\n", r.json);
	recipe_free(&r);
	rc = 0;
out:
	hug_free(ov);
	return rc;
}
