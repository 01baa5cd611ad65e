/* prepare.c: `hug prepare`: tokenizes text or JSONL into token shards.
 * (in progress) */
#include <stdio.h>

#include "cli.h"

int cli_prepare(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "hug prepare: not yet available\n");
	return 2;
}
