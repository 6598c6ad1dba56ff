// Kernel group: Elementwise (being written).
#include "common.h"
#include "pool.h"

namespace ak {
void InitElementwise(Napi::Env env, Napi::Object exports) { (void)env; (void)exports; }
}  // namespace ak
