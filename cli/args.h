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
	ARG_LIST,    /* struct arg_list *: repeatable, each value appended */
};

/* The values of a repeatable option, in order; v needs room for argc
 * entries (an option cannot be given more often than that). */
struct arg_list {
	const char **v;
	int n;
};

struct arg_spec {
	const char *name;   /* without the leading "--" */
	enum arg_kind kind;
	void *dst;
	const char *help;   /* one line for usage output */
};

/* Parses argv[1..argc) (argv[0] is the command name) against `specs`
 * (n_specs entries), storing values through each spec's dst. Arguments not
 * starting with "--" go to positional[0..max_pos), counted in *n_pos; a
 * lone "--" ends the options: every argument after it is positional (so
 * a text starting with "-" or "--" can be given). An option's value is
 * the next argument whatever it starts with (`--prompt -x`), or follows
 * "=" (`--prompt=--x`).
 * Unknown flags, missing or malformed values and too many positionals are
 * errors naming the argument. 0 or -1. */
int args_parse(int argc, char **argv, const struct arg_spec *specs, int n_specs,
	       const char **positional, int max_pos, int *n_pos, struct hug_error *err);

/* Prints "  --name VALUE  help" lines for every spec to stdout. */
void args_usage(const struct arg_spec *specs, int n_specs);

/* args_parse for subcommand `cmd` ("eval"), printing a parse error as
 * "hug <cmd>: <message>" to stderr. 0 or -1. */
int args_parse_cmd(const char *cmd, int argc, char **argv, const struct arg_spec *specs,
		   int n_specs, const char **positional, int max_pos, int *n_pos);

/* Prints `text` (the usage lines) and then args_usage to stdout; returns
 * the exit status: 0 when the help was asked for, 2 when shown because the
 * arguments were wrong. */
int args_show_usage(const char *text, const struct arg_spec *specs, int n_specs, bool help);

#endif
