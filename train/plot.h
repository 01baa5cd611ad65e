/* plot.h: training curves from a run directory's metrics.jsonl, drawn
 * with cairo (anti-aliased lines, real fonts through fontconfig, cairo's
 * built-in font when none is installed) to a PNG, or to an SVG when the
 * output path ends in .svg. The figure stacks panels sharing the step
 * axis: the training loss (validation losses as markers, a legend) on
 * top, then the learning rate, the gradient norm and the throughput
 * (tokens/s), each shown when the run logged it. Every panel has a grid
 * and "nice" ticks (1, 2 or 5 x 10^k) with numeric labels, a title and
 * the latest value. When a noisy series (loss, grad norm, tokens/s) has
 * more points than pixel columns, it is drawn faint with a centred moving
 * average over it (plot_opts.smooth).
 *
 * metrics.jsonl holds one JSON object per line. Training lines carry
 * "step", "loss", "lr", "grad_norm" and "tokens_per_s"; evaluation lines
 * carry "step" and "valid_loss". Other keys are ignored, and so are lines
 * with none of those five. Values written as null, NaN, Infinity, nan or
 * inf (bare or as strings) are skipped and counted. A resumed run may log
 * a step twice: the points are sorted by step and the later line of a
 * step wins. */
#ifndef HUG_TRAIN_PLOT_H
#define HUG_TRAIN_PLOT_H

#include <stdbool.h>
#include <stddef.h>

#include <cairo.h>

#include "../base/error.h"

struct plot_point {
	double step, value;
};

struct plot_series {
	struct plot_point *pts;   /* (n,) sorted by step, one per step */
	size_t n, cap;
};

struct plot_metrics {
	struct plot_series loss;    /* "loss" of training lines */
	struct plot_series lr;      /* "lr" of training lines */
	struct plot_series grad;    /* "grad_norm" of training lines */
	struct plot_series tps;     /* "tokens_per_s" of training lines */
	struct plot_series valid;   /* "valid_loss" of evaluation lines */
	size_t n_lines;             /* non-blank lines read */
	size_t n_nonfinite;         /* values skipped as null, NaN or infinite */
};

/* Parses the metrics in text[0..len) (need not be NUL-terminated) into m,
 * which the caller zero-initialises and later frees with
 * plot_metrics_free (also after an error). `name` labels errors:
 * "<name>:<line>: <what>" for a line that is not a JSON object or whose
 * step or values have the wrong type; "<name>: ..." when no finite loss or
 * valid_loss remains (an empty file included). 0 or -1 with err. */
int plot_metrics_parse(const char *text, size_t len, const char *name,
		       struct plot_metrics *m, struct hug_error *err);

/* Reads the file at path and parses it as plot_metrics_parse, naming
 * errors by path. 0 or -1 with err (also for a missing file). */
int plot_metrics_read(const char *path, struct plot_metrics *m, struct hug_error *err);

/* Frees the series of m and zeroes it. */
void plot_metrics_free(struct plot_metrics *m);

#define PLOT_MAX_TICKS 40

/* One axis: the range shown, its mapping and its ticks. */
struct plot_axis {
	double lo, hi;      /* shown range, lo < hi (both > 0 when log) */
	bool log;           /* positions are log10 of the value */
	bool sci;           /* labels as 1.5e-4 rather than 0.00015 */
	int n_ticks;
	double ticks[PLOT_MAX_TICKS];   /* increasing, within [lo, hi] */
	double step[PLOT_MAX_TICKS];    /* each tick's label precision */
};

/* A linear axis covering [lo, hi] with about `target` (>= 2) ticks spaced
 * by 1, 2 or 5 x 10^k. With snap the range widens to whole tick steps
 * (ticks at both ends); without, it stays [lo, hi] and the ticks fall
 * inside. A range of zero width is widened around its value first. lo, hi
 * finite, lo <= hi. */
void plot_axis_linear(struct plot_axis *a, double lo, double hi, int target, bool snap);

/* A log10 axis covering [lo, hi] (0 < lo <= hi, finite): ticks at powers
 * of ten when the range spans several decades, else at 1, 2, 5 x 10^k or
 * at every digit, else (within one decade) linear nice ticks. */
void plot_axis_log(struct plot_axis *a, double lo, double hi, int target);

/* Position of v along the axis, 0 at lo and 1 at hi. */
double plot_axis_frac(const struct plot_axis *a, double v);

/* Writes the label of tick i of a into buf (at most n bytes, n >= 16),
 * e.g. "0", "2.5", "20000", "3e-4", "1.5e-4". */
void plot_axis_label(const struct plot_axis *a, int i, char *buf, size_t n);

/* Formats v with the precision of `step` (a tick spacing > 0): fixed
 * decimals, or mantissa-e-exponent when sci; trailing zeros of a
 * mantissa are dropped. Writes at most n (>= 16) bytes to buf. */
void plot_format_number(double v, double step, bool sci, char *buf, size_t n);

#define PLOT_MIN_WIDTH 320
#define PLOT_MIN_HEIGHT 300
#define PLOT_MAX_DIM 4096

#define PLOT_MAX_SMOOTH 100001

struct plot_opts {
	int width, height;   /* image size in pixels (points for SVG) */
	bool log_y;          /* loss panel on a log10 scale */
	/* Smoothing of the loss, grad norm and tokens/s: a centred moving
	 * average over this many points drawn over the raw curve (drawn
	 * faint). -1: automatic, on only when a series has more points than
	 * pixel columns; 0 or 1: off. */
	int smooth;
};

/* Default options: 1000 x 800, linear, automatic smoothing. */
struct plot_opts plot_opts_default(void);

/* Checks the options: sizes within [PLOT_MIN_*, PLOT_MAX_DIM], smooth in
 * [-1, PLOT_MAX_SMOOTH]. 0 or -1 with err naming the flag (--width,
 * --height, --smooth). */
int plot_opts_validate(const struct plot_opts *o, struct hug_error *err);

/* Draws m on cr, whose target is o->width x o->height (pixels for an
 * image surface, points for SVG), over a white background. m must hold at
 * least one loss or valid_loss point. -1 with err for options that
 * plot_opts_validate rejects, a size with no room for the panels, under
 * log_y a loss <= 0, or cairo failing (its status named); cr is left in
 * whatever state drawing reached. */
int plot_draw(cairo_t *cr, const struct plot_metrics *m, const struct plot_opts *o,
	      struct hug_error *err);

/* Draws m (as plot_draw) into the file at path: SVG when path ends in
 * ".svg" (any case), else PNG. On an error nothing is left at path
 * except, for a PNG, a file cairo could not finish writing. 0 or -1 with
 * err naming path for write failures. */
int plot_write(const struct plot_metrics *m, const struct plot_opts *o, const char *path,
	       struct hug_error *err);

/* `hug plot` as a function: reads run_dir/metrics.jsonl, draws it and
 * writes out_path (run_dir/curves.png when NULL) as plot_write does.
 * Stores the number of skipped non-finite values in *n_nonfinite (may be
 * NULL) and the path written in out_used (at most n_out bytes; may be
 * NULL). 0 or -1 with err. */
int plot_run(const char *run_dir, const char *out_path, const struct plot_opts *o,
	     size_t *n_nonfinite, char *out_used, size_t n_out, struct hug_error *err);

#endif
