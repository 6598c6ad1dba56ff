// Kernel group: Attention (being written).
#include "common.h"
#include "pool.h"

namespace ak {
void InitAttention(Napi::Env env, Napi::Object exports) { (void)env; (void)exports; }
}  // namespace ak
