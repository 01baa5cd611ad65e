/* recipe_schema.h: the table of recipe keys: type, default, bounds and
 * documentation. It is the one place that knows the keys: parsing checks
 * unknown keys and types against it, getters take defaults from it, and
 * `hug recipe-doc` prints docs/recipes.md from it. */
#ifndef HUG_TRAIN_RECIPE_SCHEMA_H
#define HUG_TRAIN_RECIPE_SCHEMA_H

#include <stdbool.h>

enum rkey_type {
	RK_OBJECT,    /* a nested object (its keys are listed separately) */
	RK_INT,
	RK_NUMBER,
	RK_STRING,
	RK_BOOL,
	RK_ENUM,      /* a string among `choices` ("a|b|c") */
	RK_NUMBERS,   /* an array of numbers */
	RK_STRINGS,   /* an array of strings */
	RK_SOURCES,   /* an array of {"path": glob, "weight": number} */
};

/* The largest integer a recipe key may hold whatever its schema says: the
 * largest a double represents exactly (2^53 - 1), so inside int64. */
#define RECIPE_INT_MAX 9007199254740991.0

struct rkey {
	const char *path;      /* "optim.lr" */
	enum rkey_type type;
	const char *def;       /* default as JSON text; NULL: required or none */
	bool nullable;         /* null is a valid value (and the default "null") */
	double lo, hi;         /* numeric bounds, inclusive */
	bool lo_open;          /* lo itself excluded */
	const char *choices;   /* RK_ENUM */
	const char *doc;
};

extern const struct rkey recipe_keys[];
extern const int recipe_n_keys;

/* The key with this exact path, or NULL. */
const struct rkey *rkey_find(const char *path);

/* The known key nearest to `path` by edit distance (at most 3 edits, or a
 * third of the length), or NULL. */
const struct rkey *rkey_suggest(const char *path);

/* "an integer", "a number", ... for messages. */
const char *rkey_type_name(enum rkey_type t);

#endif
