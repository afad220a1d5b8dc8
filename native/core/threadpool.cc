#include "threadpool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

namespace qk {
namespace {

thread_local bool t_background = false;

// Between two tasks of background work: let a waiting thread (the event loop) run.
inline void background_yield(bool background) {
  if (background) std::this_thread::yield();
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

// Before blocking on a condition variable, workers (waiting for a job) and the caller (waiting for
// the workers) spin this long: back-to-back calls then hand work over without a futex wake-up,
// which costs tens of microseconds and dominated sub-millisecond GEMMs on 2 threads.
constexpr auto kSpin = std::chrono::microseconds(50);

template <class Pred>
void spin_until(Pred done) {
  const auto end = std::chrono::steady_clock::now() + kSpin;
  for (unsigned i = 0; !done(); ++i) {
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > end) return;
  }
}

// One parallel_for call. Tasks are claimed from `next`; the caller returns once `done` reaches n,
// whichever threads ran them. Helpers hold the job by shared_ptr, so one that wakes late (the OS
// had descheduled it) finds no task left and touches only this object: the caller never waits
// for a helper that has not started, only for tasks already claimed.
struct Job {
  const std::function<void(size_t)>* fn = nullptr;
  size_t n = 0;
  bool background = false;
  int wanted = 0;  // helpers that may still join (under the pool's mutex)
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  std::mutex mu;
  std::condition_variable cv;

  // Runs tasks until none is left; returns how many this thread ran.
  size_t work() {
    size_t ran = 0;
    for (;;) {
      const size_t t = next.fetch_add(1, std::memory_order_relaxed);
      if (t >= n) return ran;
      ++ran;
      (*fn)(t);
      if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
        std::lock_guard<std::mutex> lk(mu);
        cv.notify_all();
      }
      background_yield(background);
    }
  }
};

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      stopping_.store(true);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  // Ensure at least n-1 workers exist.
  void grow(int n) {
    while (static_cast<int>(workers_.size()) < n - 1) {
      workers_.emplace_back([this] { loop(); });
    }
  }

  // Returns false when another caller holds the pool, or while it backs off after a straggler
  // (the caller then runs the tasks itself).
  bool run(size_t n_tasks, int threads, const std::function<void(size_t)>& fn, bool background) {
    std::unique_lock<std::mutex> busy(busy_mu_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    const auto start = Clock::now();
    if (start < solo_until_) return false;
    grow(threads);
    auto job = std::make_shared<Job>();
    job->fn = &fn;
    job->n = n_tasks;
    job->background = background;
    job->wanted = std::min<int>(threads - 1, static_cast<int>(n_tasks) - 1);
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = job;
      ++generation_;
      published_.store(generation_, std::memory_order_release);
    }
    cv_.notify_all();
    const size_t mine = job->work();
    const auto own = Clock::now();
    // Every task is claimed; wait only for the ones still running on other threads.
    spin_until([&] { return job->done.load(std::memory_order_acquire) == n_tasks; });
    {
      std::unique_lock<std::mutex> lk(job->mu);
      job->cv.wait(lk, [&] { return job->done.load(std::memory_order_acquire) == n_tasks; });
    }
    backoff_after(start, own, Clock::now(), mine);
    std::lock_guard<std::mutex> lk(mu_);
    job_.reset();
    return true;
  }

  uint64_t stragglers() const { return stragglers_.load(std::memory_order_relaxed); }

 private:
  using Clock = std::chrono::steady_clock;

  // A helper that claimed a task and was then descheduled (another process wants the core) makes
  // the caller wait for the OS to run it again: milliseconds, for a call that takes microseconds
  // alone. When the caller waited much longer than one of its own tasks took, the pool runs calls
  // on the caller's thread alone for a while (5 ms, doubling on each straggler in a row up to
  // 320 ms, reset by a call without one), then tries the helpers again. Results never depend on
  // the thread count, so this changes only timing.
  void backoff_after(Clock::time_point start, Clock::time_point own, Clock::time_point end, size_t mine) {
    const auto per_task = (own - start) / static_cast<long>(std::max<size_t>(mine, 1));
    const auto waited = end - own;
    if (waited > 4 * per_task + std::chrono::microseconds(100)) {
      solo_until_ = end + backoff_;
      backoff_ = std::min<Clock::duration>(2 * backoff_, std::chrono::milliseconds(320));
      stragglers_.fetch_add(1, std::memory_order_relaxed);
    } else {
      backoff_ = std::chrono::milliseconds(5);
    }
  }

  void loop() {
    uint64_t seen = 0;
    for (;;) {
      spin_until([&] {
        return published_.load(std::memory_order_acquire) != seen || stopping_.load(std::memory_order_relaxed);
      });
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || (generation_ != seen && job_ && job_->wanted > 0); });
        if (stop_) return;
        seen = generation_;
        job = job_;
        --job->wanted;
      }
      job->work();
    }
  }

  std::mutex busy_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
  std::shared_ptr<Job> job_;  // the current job, under mu_
  uint64_t generation_ = 0;
  std::atomic<uint64_t> published_{0};  // generation_, readable without the lock (spinning)
  std::atomic<bool> stopping_{false};
  bool stop_ = false;
  // Straggler backoff, under busy_mu_.
  Clock::time_point solo_until_{};
  Clock::duration backoff_ = std::chrono::milliseconds(5);
  std::atomic<uint64_t> stragglers_{0};
};

Pool& pool() {
  // Leaked on purpose: joining threads during static destruction at process exit can deadlock.
  static Pool* p = new Pool();
  return *p;
}

std::atomic<int> g_threads{0};

}  // namespace

int default_num_threads() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  const unsigned hc = std::thread::hardware_concurrency();
  return hc > 0 ? static_cast<int>(hc) : 1;
}

uint64_t pool_stragglers() { return pool().stragglers(); }

int num_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  if (n <= 0) {
    n = default_num_threads();
    g_threads.store(n, std::memory_order_relaxed);
  }
  return n;
}

void set_num_threads(int n) { g_threads.store(std::max(1, std::min(n, 1024))); }

BackgroundScope::BackgroundScope() : prev_(t_background) { t_background = true; }
BackgroundScope::~BackgroundScope() { t_background = prev_; }

void parallel_for(size_t n_tasks, const std::function<void(size_t)>& fn) {
  if (n_tasks == 0) return;
  const int threads = num_threads();
  const bool background = t_background;
  if (threads <= 1 || n_tasks == 1 || !pool().run(n_tasks, threads, fn, background)) {
    for (size_t t = 0; t < n_tasks; ++t) {
      fn(t);
      background_yield(background);
    }
  }
}

}  // namespace qk
