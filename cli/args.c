/* args.c: subcommand flag parsing. */
#include "args.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *kind_value(enum arg_kind k)
{
	switch (k) {
	case ARG_STR: case ARG_LIST: return "VALUE";
	case ARG_INT: case ARG_I64: return "N";
	case ARG_U64: return "N";
	case ARG_DOUBLE: return "X";
	default: return "";
	}
}

/* Converts `val` for spec s; 0 or -1 with err. */
static int store(const struct arg_spec *s, const char *val, struct hug_error *err)
{
	char *end = NULL;
	errno = 0;
	switch (s->kind) {
	case ARG_STR:
		*(const char **)s->dst = val;
		return 0;
	case ARG_LIST: {
		struct arg_list *l = s->dst;
		l->v[l->n++] = val;
		return 0;
	}
	case ARG_INT: {
		long v = strtol(val, &end, 10);
		if (errno || end == val || *end || v < INT32_MIN || v > INT32_MAX)
			break;
		*(int *)s->dst = (int)v;
		return 0;
	}
	case ARG_I64: {
		long long v = strtoll(val, &end, 10);
		if (errno || end == val || *end)
			break;
		*(int64_t *)s->dst = v;
		return 0;
	}
	case ARG_U64: {
		if (val[0] == '-')
			break;
		unsigned long long v = strtoull(val, &end, 10);
		if (errno || end == val || *end)
			break;
		*(uint64_t *)s->dst = v;
		return 0;
	}
	case ARG_DOUBLE: {
		double v = strtod(val, &end);
		if (errno || end == val || *end || !isfinite(v))
			break;
		*(double *)s->dst = v;
		return 0;
	}
	case ARG_SWITCH:
		return hug_error_set(err, "--%s takes no value, got \"%s\"", s->name, val);
	}
	return hug_error_set(err, "--%s: expected %s, got \"%s\"", s->name,
			     s->kind == ARG_DOUBLE ? "a number" :
			     s->kind == ARG_U64 ? "a non-negative integer" : "an integer", val);
}

int args_parse(int argc, char **argv, const struct arg_spec *specs, int n_specs,
	       const char **positional, int max_pos, int *n_pos, struct hug_error *err)
{
	*n_pos = 0;
	bool options = true; /* until "--" */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (options && !strcmp(a, "--")) {
			options = false;
			continue;
		}
		if (!options || strncmp(a, "--", 2) != 0) {
			if (*n_pos == max_pos)
				return hug_error_set(err, "unexpected argument \"%s\"", a);
			positional[(*n_pos)++] = a;
			continue;
		}
		const char *name = a + 2, *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const struct arg_spec *s = NULL;
		for (int k = 0; k < n_specs && !s; k++)
			if (strlen(specs[k].name) == len && !strncmp(specs[k].name, name, len))
				s = &specs[k];
		if (!s)
			return hug_error_set(err, "unknown option \"%.*s\" (see --help)",
					     (int)(len + 2), a);
		if (s->kind == ARG_SWITCH) {
			if (eq)
				return store(s, eq + 1, err);
			*(bool *)s->dst = true;
			continue;
		}
		const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
		if (!val)
			return hug_error_set(err, "--%s needs a value", s->name);
		if (store(s, val, err))
			return -1;
	}
	return 0;
}

void args_usage(const struct arg_spec *specs, int n_specs)
{
	for (int i = 0; i < n_specs; i++) {
		char left[64];
		snprintf(left, sizeof(left), "--%s %s", specs[i].name, kind_value(specs[i].kind));
		printf("  %-26s %s\n", left, specs[i].help);
	}
}

int args_parse_cmd(const char *cmd, int argc, char **argv, const struct arg_spec *specs,
		   int n_specs, const char **positional, int max_pos, int *n_pos)
{
	struct hug_error err = { 0 };
	if (args_parse(argc, argv, specs, n_specs, positional, max_pos, n_pos, &err) == 0)
		return 0;
	fprintf(stderr, "hug %s: %s\n", cmd, err.msg);
	return -1;
}

int args_show_usage(const char *text, const struct arg_spec *specs, int n_specs, bool help)
{
	fputs(text, stdout);
	args_usage(specs, n_specs);
	return help ? 0 : 2;
}
