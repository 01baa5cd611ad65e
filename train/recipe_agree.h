/* recipe_agree.h: every rank of a job must train the same recipe. Each
 * rank reduces its effective recipe (after --set overrides) and the flags
 * that steer the run (--resume) to a canonical JSON text (object keys
 * sorted at every level, no whitespace), hashes it with SHA-256 and
 * compares the hash with every other rank's; on a mismatch the ranks that
 * differ from rank 0 name the first differing key path and both values.
 *
 * No key is excluded: no recipe key may legitimately differ between ranks.
 * Paths are compared as written (relative ones resolve against each rank's
 * working directory), so node-local copies of the data under the same path
 * agree; the recipe file's own path is not part of the recipe. Keys left
 * to their defaults are compared as absent, so a rank that spells out a
 * default is refused too (write the same recipe on every rank). */
#ifndef HUG_TRAIN_RECIPE_AGREE_H
#define HUG_TRAIN_RECIPE_AGREE_H

#include <stdbool.h>
#include <stddef.h>

#include "../base/error.h"
#include "../parallel/comm.h"

/* The canonical text of the recipe JSON `json` (struct recipe's json) with
 * "--resume": true added when `resume`. hug_free it; NULL when json does
 * not parse. */
char *recipe_canonical(const char *json, bool resume);

/* Compares two canonical texts: 0 when equal, else 1 with the first
 * differing key path in key order ("train.steps", "data.train[0].path")
 * in path[n] and each side's value as compact JSON ("(absent)" when a side
 * lacks the key) in va[nv] and vb[nv], truncated to fit. -1 when a text
 * does not parse. */
int recipe_first_difference(const char *a, const char *b, char *path, size_t n, char *va,
			    char *vb, size_t nv);

/* Collective over par's world: 0 when every rank's recipe_canonical(json,
 * resume) is the same. Otherwise -1 with err on rank 0 (naming the first
 * rank that differs) and on every rank that differs from rank 0 (naming
 * the first differing key, rank 0's value and its own), 0 on the others:
 * follow it with parallel_agree so that every rank stops. */
int recipe_agree(const struct parallel *par, const char *json, bool resume,
		 struct hug_error *err);

#endif
