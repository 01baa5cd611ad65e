/* fuzz_metrics.c: libFuzzer harness for hug plot's input (train/plot.h):
 * the input is a metrics.jsonl, parsed with plot_metrics_parse and, when
 * it parses, drawn by plot_draw on a small cairo image surface (any
 * values, steps, counts and mixes of series must draw or fail cleanly).
 * fontconfig's process-lifetime allocations are suppressed for
 * LeakSanitizer by train/plot.c. */
#include <stdint.h>
#include <string.h>

#include "../../train/plot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct plot_metrics m;
	struct hug_error err = {0};
	memset(&m, 0, sizeof(m));
	if (plot_metrics_parse((const char *)data, size, "fuzz", &m, &err) == 0) {
		struct plot_opts o = plot_opts_default();
		o.width = PLOT_MIN_WIDTH;
		o.height = PLOT_MIN_HEIGHT;
		o.log_y = size % 2;
		cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, o.width,
								 o.height);
		cairo_t *cr = cairo_create(sf);
		(void)plot_draw(cr, &m, &o, &err);
		cairo_destroy(cr);
		cairo_surface_destroy(sf);
	}
	plot_metrics_free(&m);
	return 0;
}
