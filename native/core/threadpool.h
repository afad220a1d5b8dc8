// A process-wide pool of worker threads shared by every op. parallel_for splits [0, n) into
// tasks that the calling thread and the workers claim one at a time from a shared counter; the
// caller waits only for tasks already claimed, never for a worker the OS has not run yet (so a
// descheduled worker costs at most one task, not a share of the work). Callers from several threads at once are safe:
// while the pool is busy with another caller's job, a call runs on its own thread instead of waiting.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

namespace qk {

// Threads used by ops (the caller included). Default: the CPUs this process may run on.
int num_threads();
// 1..1024; values above the available CPUs are allowed (oversubscription is the caller's choice).
void set_num_threads(int n);
int default_num_threads();

// Runs fn(task) for task in [0, n_tasks), spread over up to num_threads() threads. After a call
// in which the caller waited long for a descheduled helper, calls run on the caller's thread
// alone for a backoff period (5 ms, doubling up to 320 ms while it recurs): on an oversubscribed
// machine a call is then never slower than one thread, and on a quiet one nothing changes.
void parallel_for(size_t n_tasks, const std::function<void(size_t task)>& fn);
// Calls that waited for a straggler so far (tests, diagnosis).
uint64_t pool_stragglers();

// Below this many bytes of input a call runs on one thread: waking the pool costs more.
constexpr size_t kParallelMinBytes = size_t{1} << 20;

// How many tasks of `chunk` items to cut [0, n) into: 1 when the input (`bytes`) is small, the
// pool has one thread or n fits one chunk; else ceil(n / chunk).
inline size_t parallel_tasks(size_t n, size_t chunk, size_t bytes) {
  if (n == 0) return 0;
  if (bytes < kParallelMinBytes || num_threads() <= 1 || n <= chunk) return 1;
  return (n + chunk - 1) / chunk;
}

// Runs body(begin, end) over [0, n) in chunks of `chunk` items (the whole range on one thread
// when parallel_tasks says 1). `bytes`: the input the whole call reads.
template <class F>
void parallel_ranges(size_t n, size_t chunk, size_t bytes, F&& body) {
  const size_t tasks = parallel_tasks(n, chunk, bytes);
  if (tasks == 0) return;
  if (tasks == 1) {
    body(size_t{0}, n);
    return;
  }
  parallel_for(tasks, [&](size_t t) { body(t * chunk, t + 1 == tasks ? n : (t + 1) * chunk); });
}

// While one lives on a thread, the parallel_for calls it makes are background work (async jobs
// on libuv's threads): every thread running their tasks yields the CPU between tasks, so that a
// Node event loop sharing the cores waits for at most one task, not for the scheduler's tick.
class BackgroundScope {
 public:
  BackgroundScope();
  ~BackgroundScope();
  BackgroundScope(const BackgroundScope&) = delete;
  BackgroundScope& operator=(const BackgroundScope&) = delete;

 private:
  bool prev_;
};

}  // namespace qk
