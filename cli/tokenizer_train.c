/* tokenizer_train.c: `hug tokenizer train`: trains a byte-level BPE
 * tokenizer on text files and writes a tokenizer.json. (in progress) */
#include <stdio.h>

#include "cli.h"

int cli_tokenizer(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "hug tokenizer: not yet available\n");
	return 2;
}
