/* plot_file.c: the files of plot.h: plot_write draws a figure onto a
 * cairo SVG surface (a path ending in .svg) or an image surface saved as
 * PNG, and plot_run reads a run's metrics.jsonl and writes its figure. */
#include "plot.h"

#include <cairo-svg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../base/alloc.h"

static bool ends_with_svg(const char *path)
{
	size_t n = strlen(path);
	return n >= 4 && !strcasecmp(path + n - 4, ".svg");
}

int plot_write(const struct plot_metrics *m, const struct plot_opts *o, const char *path,
	       struct hug_error *err)
{
	bool svg = ends_with_svg(path);
	if (plot_opts_validate(o, err))
		return -1;
	if (m->loss.n == 0 && m->valid.n == 0)
		return hug_error_set(err, "no loss values to plot");
	cairo_surface_t *sf = svg ? cairo_svg_surface_create(path, o->width, o->height)
				  : cairo_image_surface_create(CAIRO_FORMAT_RGB24, o->width,
							       o->height);
	cairo_status_t st = cairo_surface_status(sf);
	if (st != CAIRO_STATUS_SUCCESS) {
		cairo_surface_destroy(sf);
		return hug_error_set(err, "%s: cannot create the %s: %s", path,
				     svg ? "SVG" : "image", cairo_status_to_string(st));
	}
	cairo_t *cr = cairo_create(sf);
	int rc = plot_draw(cr, m, o, err);
	cairo_destroy(cr);
	if (svg) {
		cairo_surface_finish(sf);
		st = cairo_surface_status(sf);
		if (!rc && st != CAIRO_STATUS_SUCCESS)
			rc = hug_error_set(err, "%s: cannot write the SVG: %s", path,
					   cairo_status_to_string(st));
		if (rc)
			unlink(path);
	} else if (!rc) {
		st = cairo_surface_write_to_png(sf, path);
		if (st != CAIRO_STATUS_SUCCESS)
			rc = hug_error_set(err, "%s: cannot write the PNG: %s", path,
					   cairo_status_to_string(st));
	}
	cairo_surface_destroy(sf);
	return rc;
}

/* dir + "/" + name in a new hug_malloc'd string. */
static char *join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = hug_malloc(a + b + 2);
	memcpy(p, dir, a);
	p[a] = '/';
	memcpy(p + a + 1, name, b + 1);
	return p;
}

int plot_run(const char *run_dir, const char *out_path, const struct plot_opts *o,
	     size_t *n_nonfinite, char *out_used, size_t n_out, struct hug_error *err)
{
	struct plot_metrics m;
	char *in = join(run_dir, "metrics.jsonl");
	char *out = out_path ? hug_strdup(out_path) : join(run_dir, "curves.png");
	int rc = -1;
	memset(&m, 0, sizeof(m));
	if (plot_opts_validate(o, err) || plot_metrics_read(in, &m, err))
		goto done;
	if (n_nonfinite)
		*n_nonfinite = m.n_nonfinite;
	if (plot_write(&m, o, out, err))
		goto done;
	if (out_used)
		snprintf(out_used, n_out, "%s", out);
	rc = 0;
done:
	plot_metrics_free(&m);
	hug_free(in);
	hug_free(out);
	return rc;
}
