// A persistent thread pool sized to the machine (ALIGNKIT_THREADS overrides).
// Workers spin briefly after a job, then sleep, so back-to-back kernels do not pay a wake-up each.
#pragma once
#include <cstddef>
#include <functional>

namespace ak::pool {

int threads();             // workers + the calling thread
void set_threads(int n);   // 1 = serial; takes effect for the next job

// Runs fn(task, thread_id) for every task in [0, ntasks) and returns when all are done.
// thread_id is in [0, threads()). Calls from several host threads (worker_threads) take turns;
// a call made from inside a task runs serially on that thread.
void run(size_t ntasks, const std::function<void(size_t task, int tid)>& fn);

// Splits [0, n) into about threads()*4 chunks of at least `grain` items and runs f(begin, end).
template <class F>
void parallel_for(size_t n, size_t grain, F&& f) {
  if (n == 0) return;
  size_t t = static_cast<size_t>(threads());
  if (grain == 0) grain = 1;
  size_t chunks = (n + grain - 1) / grain;
  if (chunks > t * 4) chunks = t * 4;
  if (t <= 1 || chunks <= 1) { f(size_t(0), n); return; }
  size_t step = (n + chunks - 1) / chunks;
  chunks = (n + step - 1) / step;
  run(chunks, [&](size_t c, int) {
    size_t b = c * step, e = b + step < n ? b + step : n;
    f(b, e);
  });
}

}  // namespace ak::pool
