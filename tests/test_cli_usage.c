/* test_cli_usage.c: every subcommand answers --help with its usage on
 * stdout and exit 0, missing arguments with the usage and exit 2, and an
 * unknown flag with "hug <cmd>: unknown option" and exit 2 (the shared
 * args_parse_cmd / args_show_usage of cli/args.c). Needs HUG_BIN. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

TEST(cli_usage_help_missing_arguments_and_unknown_flags)
{
	static const struct {
		const char *cmd, *usage;
	} cmds[] = {
		{ "eval", "usage: hug eval --model DIR" },
		{ "generate", "usage: hug generate --model DIR" },
		{ "plot", "usage: hug plot RUN_DIR" },
		{ "tokenize", "usage: hug tokenize --tokenizer T.json TEXT" },
		{ "prepare", "usage: hug prepare --tokenizer T.json" },
		{ "tokenizer train", "usage: hug tokenizer train --vocab-size N" },
	};
	const char *bin = getenv("HUG_BIN");
	if (!bin)
		SKIP("HUG_BIN not set (run through make test)");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char cmd[512], out[8192], want[128];
		snprintf(cmd, sizeof(cmd), "%s %s --help", bin, cmds[i].cmd);
		CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
		CHECK(strstr(out, cmds[i].usage) && strstr(out, "--help"));
		snprintf(cmd, sizeof(cmd), "%s %s", bin, cmds[i].cmd);
		CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
		CHECK(strstr(out, cmds[i].usage) != NULL);
		snprintf(cmd, sizeof(cmd), "%s %s --frobnicate", bin, cmds[i].cmd);
		CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
		snprintf(want, sizeof(want), "hug %s: unknown option \"--frobnicate\"", cmds[i].cmd);
		if (!strstr(out, want))
			test_fail_at(__FILE__, __LINE__, "%s: no \"%s\" in:\n%s", cmd, want, out);
	}
}
