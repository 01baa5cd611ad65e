/* profile.c: the op profiler's accumulators and report. */
#include "profile.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"

#define MAX_REGIONS 32

struct entry {
	const char *name;
	const char *kind;   /* "forward", "backward" or "" */
	long calls;
	double seconds;
};

static struct entry ops[AG_OP_COUNT][2];
static struct entry regions[MAX_REGIONS];
static int n_regions;

static int state = -1; /* unread, off, on */

void ag_profile_set(bool on)
{
	state = on;
}

bool ag_profile_on(void)
{
	if (state < 0) {
		const char *s = getenv("HUG_PROFILE");
		state = s && *s && strcmp(s, "0") != 0;
	}
	return state == 1;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void sync_device(enum device dev)
{
	const struct ag_backend *b = dev == DEV_CPU ? NULL : ag_backend_get(dev);
	if (b && b->synchronize)
		b->synchronize();
}

double ag_profile_start(enum device dev)
{
	if (!ag_profile_on())
		return 0;
	sync_device(dev);
	return now();
}

static void add(struct entry *e, double t0, enum device dev)
{
	sync_device(dev);
	e->calls++;
	e->seconds += now() - t0;
}

void ag_profile_stop_op(enum ag_op op, bool backward, enum device dev, double t0)
{
	if (!ag_profile_on())
		return;
	struct entry *e = &ops[op][backward];
	e->name = ag_op_info[op].name;
	e->kind = backward ? "backward" : "forward";
	add(e, t0, dev);
}

void ag_profile_stop(const char *name, enum device dev, double t0)
{
	if (!ag_profile_on())
		return;
	int i = 0;
	while (i < n_regions && regions[i].name != name && strcmp(regions[i].name, name))
		i++;
	if (i == n_regions) {
		if (n_regions == MAX_REGIONS)
			return;
		regions[n_regions++] = (struct entry){ .name = name, .kind = "" };
	}
	add(&regions[i], t0, dev);
}

static int by_seconds(const void *a, const void *b)
{
	double x = (*(const struct entry *const *)a)->seconds;
	double y = (*(const struct entry *const *)b)->seconds;
	return (x < y) - (x > y);
}

void ag_profile_report(FILE *out)
{
	if (!ag_profile_on())
		return;
	const struct entry *all[AG_OP_COUNT * 2 + MAX_REGIONS];
	int n = 0;
	double total = 0;
	for (int op = 0; op < AG_OP_COUNT; op++)
		for (int k = 0; k < 2; k++)
			if (ops[op][k].calls) {
				all[n++] = &ops[op][k];
				total += ops[op][k].seconds;
			}
	for (int i = 0; i < n_regions; i++) {
		all[n++] = &regions[i];
		total += regions[i].seconds;
	}
	if (!n)
		return;
	qsort(all, (size_t)n, sizeof(all[0]), by_seconds);
	fprintf(out, "profile (HUG_PROFILE): %.3f s timed\n", total);
	fprintf(out, "  %-28s %10s %10s %10s %7s\n", "", "calls", "total s", "ms/call", "share");
	for (int i = 0; i < n; i++) {
		char name[48];
		snprintf(name, sizeof(name), "%s%s%s", all[i]->name, *all[i]->kind ? " " : "",
			 all[i]->kind);
		fprintf(out, "  %-28s %10ld %10.3f %10.3f %6.1f%%\n", name, all[i]->calls,
			all[i]->seconds, 1e3 * all[i]->seconds / (double)all[i]->calls,
			total > 0 ? 100.0 * all[i]->seconds / total : 0.0);
	}
}

void ag_profile_reset(void)
{
	memset(ops, 0, sizeof(ops));
	memset(regions, 0, sizeof(regions));
	n_regions = 0;
}
