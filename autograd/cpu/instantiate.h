/* instantiate.h: includes the template named by CPU_TEMPLATE twice, with
 * REAL = float and FN(x) = x##_f32, then REAL = double and FN(x) = x##_f64.
 * Templates include <tgmath.h> so exp, tanh, sqrt... follow REAL. A
 * template outside autograd/cpu/ is named from the repository root. No
 * include guard: it is meant to be included once per template. */
#ifndef CPU_DISPATCH
/* Calls name_f64(...) for f64 tensors, name_f32(...) otherwise. */
#define CPU_DISPATCH(dt, name, ...)                                            \
	((dt) == DT_F64 ? name##_f64(__VA_ARGS__) : name##_f32(__VA_ARGS__))
#endif
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
