/* param.c: the name -> tensor parameter registry. */
#include "param.h"

#include <string.h>

#include "../base/alloc.h"
#include "../base/panic.h"

void param_table_init(struct param_table *pt)
{
	memset(pt, 0, sizeof(*pt));
}

void param_table_free(struct param_table *pt)
{
	for (int i = 0; i < pt->n; i++)
		hug_free(pt->items[i].name);
	hug_free(pt->items);
	memset(pt, 0, sizeof(*pt));
}

struct param *param_table_add(struct param_table *pt, const char *name,
			      struct tensor *t, bool no_decay)
{
	HUG_ASSERT(strlen(name) < PARAM_NAME_MAX);
	if (param_table_find(pt, name))
		hug_panic("parameter %s registered twice", name);
	if (pt->n == pt->cap) {
		pt->cap = pt->cap ? pt->cap * 2 : 64;
		pt->items = hug_realloc(pt->items, (size_t)pt->cap * sizeof(*pt->items));
	}
	struct param *p = &pt->items[pt->n++];
	memset(p, 0, sizeof(*p));
	p->name = hug_strdup(name);
	p->t = t;
	p->no_decay = no_decay;
	t->name = p->name;
	return p;
}

struct param *param_table_find(const struct param_table *pt, const char *name)
{
	for (int i = 0; i < pt->n; i++)
		if (!strcmp(pt->items[i].name, name))
			return &pt->items[i];
	return NULL;
}

int64_t param_table_numel(const struct param_table *pt)
{
	int64_t n = 0;
	for (int i = 0; i < pt->n; i++)
		n += tensor_numel(pt->items[i].t);
	return n;
}
