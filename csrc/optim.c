/* optim.c: fused optimizer updates. NumPy needs about eleven passes over memory for one Adam
 * step (a temporary per operation); these kernels make one, which matters for AlexNet's 62M
 * parameters. Each element is independent, so any thread count gives the same bits. */
#include <math.h>

#include "fastcnn.h"
#include "parallel.h"

#define REAL float
#define FN(name) name##_f32
#define SQRT sqrtf
#include "optim_impl.h"
#undef REAL
#undef FN
#undef SQRT

#define REAL double
#define FN(name) name##_f64
#define SQRT sqrt
#include "optim_impl.h"
#undef REAL
#undef FN
#undef SQRT
