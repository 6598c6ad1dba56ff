#include "pool.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "common.h"

// Jobs: the caller publishes (fn, ntasks), wakes the workers and starts claiming tasks itself. A worker joins
// the job only while it is open (registering under the mutex), so the caller never waits for a worker that
// is asleep or descheduled: when it has claimed the last task it closes the job and waits only for the
// workers that joined to finish the tasks they hold. Idle workers spin on the job counter for about a
// millisecond (back-to-back kernels start without a wake-up), then sleep on a condition variable.

namespace ak::pool {
namespace {

thread_local bool in_task = false;
thread_local int cur_tid = 0;

inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}

using Fn = std::function<void(size_t, int)>;

struct Pool {
  std::vector<std::thread> workers;
  std::mutex submit;           // one job at a time
  std::mutex m;                // guards fn, ntasks, open, stop and changes of refs
  std::condition_variable cv;  // sleeping workers wait here for a job
  std::condition_variable left;  // the caller waits here for the last registered worker to leave
  std::atomic<uint64_t> generation{0};  // bumped for every job
  std::atomic<size_t> next{0};          // next task to claim in the current job
  std::atomic<int> refs{0};             // workers inside the current job
  const Fn* fn = nullptr;
  size_t ntasks = 0;
  bool open = false;
  bool stop = false;
  int nthreads = 1;

  static constexpr int kSpins = 20000;  // ~1.3 ms of pause instructions on this hardware

  void work(const Fn& f, size_t n, int tid) {
    in_task = true;
    cur_tid = tid;
    for (;;) {
      size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n) break;
      f(i, tid);
    }
    in_task = false;
  }

  void loop(int tid) {
    uint64_t seen = 0;
    for (;;) {
      for (int spins = 0; spins < kSpins && generation.load(std::memory_order_acquire) == seen; ++spins) cpu_relax();
      const Fn* f;
      size_t n;
      {
        std::unique_lock<std::mutex> lk(m);
        cv.wait(lk, [&] { return stop || generation.load(std::memory_order_acquire) != seen; });
        if (stop) return;
        seen = generation.load(std::memory_order_acquire);
        if (!open || tid >= nthreads) continue;  // too late for that job: every task is taken
        refs.fetch_add(1, std::memory_order_relaxed);
        f = fn;
        n = ntasks;
      }
      work(*f, n, tid);
      {
        std::lock_guard<std::mutex> lk(m);
        if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1 && !open) left.notify_one();
      }
    }
  }

  void resize(int n) {
    if (n < 1) n = 1;
    shutdown();
    stop = false;
    nthreads = n;
    for (int t = 1; t < n; ++t) workers.emplace_back([this, t] { loop(t); });
  }

  void shutdown() {
    {
      std::lock_guard<std::mutex> lk(m);
      stop = true;
    }
    cv.notify_all();
    for (auto& w : workers) w.join();
    workers.clear();
  }

  void run(size_t n, const Fn& f) {
    std::lock_guard<std::mutex> job(submit);
    if (workers.empty() || n == 1) {
      in_task = true;
      for (size_t i = 0; i < n; ++i) f(i, 0);
      in_task = false;
      return;
    }
    {
      std::lock_guard<std::mutex> lk(m);
      fn = &f;
      ntasks = n;
      next.store(0, std::memory_order_relaxed);
      open = true;
      generation.fetch_add(1, std::memory_order_acq_rel);
    }
    cv.notify_all();
    work(f, n, 0);
    // Every task is claimed. Close the job (late workers will not join) and wait for those inside.
    {
      std::lock_guard<std::mutex> lk(m);
      open = false;
    }
    for (int spins = 0; spins < kSpins && refs.load(std::memory_order_acquire) != 0; ++spins) cpu_relax();
    if (refs.load(std::memory_order_acquire) != 0) {
      std::unique_lock<std::mutex> lk(m);
      left.wait(lk, [&] { return refs.load(std::memory_order_acquire) == 0; });
    }
    std::lock_guard<std::mutex> lk(m);
    fn = nullptr;
  }

  ~Pool() { shutdown(); }
};

int default_threads() {
  if (const char* p = std::getenv("ALIGNKIT_THREADS")) {
    int n = std::atoi(p);
    if (n > 0) return n;
  }
  unsigned h = std::thread::hardware_concurrency();
  return h ? static_cast<int>(h) : 1;
}

Pool& pool() {
  static Pool* p = [] {
    auto* q = new Pool();  // never destroyed: threads must outlive every addon instance
    q->resize(default_threads());
    return q;
  }();
  return *p;
}

}  // namespace

int threads() { return pool().nthreads; }

void set_threads(int n) {
  Pool& p = pool();
  std::lock_guard<std::mutex> job(p.submit);
  p.resize(n);
}

void run(size_t ntasks, const std::function<void(size_t, int)>& fn) {
  if (ntasks == 0) return;
  if (in_task) {
    for (size_t i = 0; i < ntasks; ++i) fn(i, cur_tid);
    return;
  }
  pool().run(ntasks, fn);
}

}  // namespace ak::pool
