/* plot.c: `hug plot RUN_DIR [--out FILE.png|FILE.svg]`: draws the curves
 * of a run's metrics.jsonl (loss with validation markers, learning rate,
 * grad norm, tokens/s; train/plot.h) with cairo into a PNG, or an SVG when
 * the --out path ends in .svg; RUN_DIR/curves.png unless --out says. */
#include <stdio.h>

#include "../train/plot.h"
#include "args.h"
#include "cli.h"

int cli_plot(int argc, char **argv)
{
	struct plot_opts o = plot_opts_default();
	const char *out = NULL;
	bool help = false;
	const struct arg_spec specs[] = {
		{ "out", ARG_STR, &out, "PNG, or SVG if it ends in .svg (default RUN_DIR/curves.png)" },
		{ "width", ARG_INT, &o.width, "image width in pixels (1000)" },
		{ "height", ARG_INT, &o.height, "image height in pixels (800)" },
		{ "log-y", ARG_SWITCH, &o.log_y, "loss on a log scale" },
		{ "smooth", ARG_INT, &o.smooth, "moving average of loss, grad norm, tokens/s over N points "
		  "(-1: auto, 0: off)" },
		{ "help", ARG_SWITCH, &help, "show this help" },
	};
	const int n_specs = (int)(sizeof(specs) / sizeof(specs[0]));
	struct hug_error err = { 0 };
	const char *pos[1];
	int n_pos = 0;
	if (args_parse_cmd("plot", argc, argv, specs, n_specs, pos, 1, &n_pos))
		return 2;
	if (help || n_pos != 1)
		return args_show_usage("usage: hug plot RUN_DIR [--out FILE.png|FILE.svg] [--width 1000 --height 800] "
				       "[--log-y] [--smooth N]\n",
				       specs, n_specs, help);
	size_t skipped = 0;
	char written[4096];
	if (plot_run(pos[0], out, &o, &skipped, written, sizeof(written), &err)) {
		fprintf(stderr, "hug plot: %s\n", err.msg);
		return 2;
	}
	if (skipped)
		fprintf(stderr, "hug plot: warning: skipped %zu non-finite value%s "
			"(NaN, Infinity or null)\n", skipped, skipped == 1 ? "" : "s");
	printf("wrote %s\n", written);
	return 0;
}
