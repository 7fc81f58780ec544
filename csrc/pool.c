/* pool.c: max and average 2-D pooling, forward and backward (API and shapes: fastcnn.h).
 * The bodies live once in pool_impl.h and are instantiated here for float (_f32) and double
 * (_f64). Parallel over planes with OpenMP when the build has it; serial otherwise. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "fastcnn.h"

#define REAL float
#define FN(name) name##_f32
#include "pool_impl.h"
#undef REAL
#undef FN

#define REAL double
#define FN(name) name##_f64
#include "pool_impl.h"
#undef REAL
#undef FN
