#include "pool.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "common.h"

namespace ak::pool {
namespace {

thread_local bool in_task = false;
thread_local int cur_tid = 0;

struct Pool {
  std::vector<std::thread> workers;
  std::mutex submit;           // one job at a time
  std::mutex m;
  std::condition_variable cv;  // sleeping workers wait here
  std::atomic<uint64_t> generation{0};
  std::atomic<size_t> next{0};
  std::atomic<int> active{0};  // workers still inside the current job
  size_t ntasks = 0;
  const std::function<void(size_t, int)>* fn = nullptr;
  bool stop = false;
  int nthreads = 1;

  void work(int tid) {
    in_task = true;
    cur_tid = tid;
    for (;;) {
      size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= ntasks) break;
      (*fn)(i, tid);
    }
    in_task = false;
  }

  void loop(int tid) {
    uint64_t seen = 0;
    for (;;) {
      // Spin for a while (cheap wake-up for back-to-back kernels), then sleep.
      int spins = 0;
      while (generation.load(std::memory_order_acquire) == seen && spins < 20000) {
        ++spins;
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
      }
      if (generation.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lk(m);
        cv.wait(lk, [&] { return stop || generation.load(std::memory_order_acquire) != seen; });
      }
      if (stop) return;
      seen = generation.load(std::memory_order_acquire);
      if (tid < nthreads) work(tid);
      active.fetch_sub(1, std::memory_order_acq_rel);
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

  void run(size_t n, const std::function<void(size_t, int)>& f) {
    std::lock_guard<std::mutex> job(submit);
    if (workers.empty() || n == 1) {
      in_task = true;
      for (size_t i = 0; i < n; ++i) f(i, 0);
      in_task = false;
      return;
    }
    fn = &f;
    ntasks = n;
    next.store(0, std::memory_order_relaxed);
    active.store(static_cast<int>(workers.size()), std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(m);
      generation.fetch_add(1, std::memory_order_acq_rel);
    }
    cv.notify_all();
    work(0);
    while (active.load(std::memory_order_acquire) != 0) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    }
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
