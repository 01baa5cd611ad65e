/* cli.h: the subcommand table shared by cli/ files. */
#ifndef HUG_CLI_CLI_H
#define HUG_CLI_CLI_H

#define HUG_VERSION "0.1.0"

struct cli_command {
	const char *name;
	const char *summary;
	/* argv[0] is the command name; returns the process exit code */
	int (*run)(int argc, char **argv);
};

int cli_help(int argc, char **argv);
int cli_version(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_generate(int argc, char **argv);
int cli_recipe(int argc, char **argv);
int cli_train(int argc, char **argv);
int cli_plot(int argc, char **argv);
int cli_tokenize(int argc, char **argv);
int cli_tokenizer(int argc, char **argv);
int cli_prepare(int argc, char **argv);
int cli_export(int argc, char **argv);
int cli_plan(int argc, char **argv);

#endif
