/* op_fixture.h: running an op against a committed safetensors fixture of
 * float64 references (tests/test_op_fixtures*.c): the open fixture, a
 * host arena for inputs and their gradients, a context over a step arena,
 * and a comparison that fails the test with the worst element. */
#ifndef HUG_TESTS_OP_FIXTURE_H
#define HUG_TESTS_OP_FIXTURE_H

#include <stdbool.h>

#include "../autograd/autograd.h"
#include "../io/safetensors.h"

struct op_fx {
	const char *path;        /* the fixture file */
	struct st_file f;
	struct arena a, step;
	struct ag_ctx ctx;
	enum dtype dt;           /* the dtype the op runs in */
	double tol;              /* the test's tolerance */
};

/* Opens fixture `path` for an op run in dt with tolerance tol. false (a
 * test failure recorded) when it cannot be read. */
bool op_fx_init(struct op_fx *x, const char *path, enum dtype dt, double tol);
void op_fx_free(struct op_fx *x);

/* Fixture tensor `key` as a new contiguous host tensor of dtype dt
 * (converted from the file's dtype). NULL, a recorded test failure, when
 * missing or of more than TENSOR_MAX_DIMS dims. */
struct tensor *op_fx_load_as(struct op_fx *x, const char *key, enum dtype dt);
/* As op_fx_load_as in the op's dtype. */
struct tensor *op_fx_load(struct op_fx *x, const char *key);
/* As op_fx_load, and marked as needing a gradient (kept in the host arena). */
struct tensor *op_fx_leaf(struct op_fx *x, const char *key);

/* Fails the test (naming `what` and the error) when `got` is NULL or
 * differs from fixture tensor `key` (f64) by more than tol, the error
 * being max|got - ref| / max(1, max|ref|) (NaN fails). */
void op_fx_compare(struct op_fx *x, const char *what, const struct tensor *got,
		   const char *key, double tol);

/* true when the context holds no error; else records the failure of
 * `stage` with the context's message. */
bool op_fx_ok(struct op_fx *x, const char *stage);

#endif
