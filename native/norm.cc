// Kernel group: Norm (being written).
#include "common.h"
#include "pool.h"

namespace ak {
void InitNorm(Napi::Env env, Napi::Object exports) { (void)env; (void)exports; }
}  // namespace ak
