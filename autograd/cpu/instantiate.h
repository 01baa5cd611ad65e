/* instantiate.h: includes the template named by CPU_TEMPLATE twice, with
 * REAL = float and FN(x) = x##_f32, then REAL = double and FN(x) = x##_f64.
 * Templates include <tgmath.h> so exp, tanh, sqrt... follow REAL. No
 * include guard: it is meant to be included once per template. */
#define REAL float
#define FN(name) name##_f32
#include CPU_TEMPLATE
#undef REAL
#undef FN
#define REAL double
#define FN(name) name##_f64
#include CPU_TEMPLATE
#undef REAL
#undef FN
#undef CPU_TEMPLATE
