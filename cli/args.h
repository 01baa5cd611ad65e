/* args.h: table-driven parsing of subcommand flags (`--name value`,
 * `--name=value`, `--switch`) and positional arguments, with errors that
 * name the flag and what was expected. */
#ifndef HUG_CLI_ARGS_H
#define HUG_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/error.h"

enum arg_kind {
	ARG_STR,     /* const char ** */
	ARG_INT,     /* int * */
	ARG_I64,     /* int64_t * */
	ARG_U64,     /* uint64_t * */
	ARG_DOUBLE,  /* double * */
	ARG_SWITCH,  /* bool *, no value: set to true */
};

struct arg_spec {
	const char *name;   /* without the leading "--" */
	enum arg_kind kind;
	void *dst;
	const char *help;   /* one line for usage output */
};

/* Parses argv[1..argc) (argv[0] is the command name) against `specs`
 * (n_specs entries), storing values through each spec's dst. Arguments not
 * starting with "--" go to positional[0..max_pos), counted in *n_pos.
 * Unknown flags, missing or malformed values and too many positionals are
 * errors naming the argument. 0 or -1. */
int args_parse(int argc, char **argv, const struct arg_spec *specs, int n_specs,
	       const char **positional, int max_pos, int *n_pos, struct hug_error *err);

/* Prints "  --name VALUE  help" lines for every spec to stdout. */
void args_usage(const struct arg_spec *specs, int n_specs);

#endif
