/* fuzz_metrics.c: libFuzzer harness for hug plot's input (train/plot.h):
 * the input is a metrics.jsonl, parsed with plot_metrics_parse and, when
 * it parses, drawn by plot_draw on a small cairo image surface (any
 * values, steps, counts and mixes of series must draw or fail cleanly). */
#include <stdint.h>
#include <string.h>

#include "../../train/plot.h"

/* fontconfig keeps what its first font lookup allocates for the life of
 * the process (freed only by FcFini, which cairo does not call); that is
 * not a leak of hug's, so LeakSanitizer is told to ignore it. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libfontconfig.so\n";
}

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
