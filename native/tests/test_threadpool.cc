// The thread pool's straggler backoff: a call whose helper was descheduled mid-task (simulated by
// a helper task that sleeps) is counted, and the calls right after it run on the caller's thread
// alone; every task still runs exactly once.
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "core/threadpool.h"
#include "test_util.h"

namespace qk {
namespace {

void spin_for(std::chrono::microseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

void test_straggler_backoff() {
  const int saved = num_threads();
  set_num_threads(2);
  const std::thread::id caller = std::this_thread::get_id();
  bool straggled = false;
  for (int attempt = 0; attempt < 50 && !straggled; ++attempt) {
    const uint64_t before = pool_stragglers();
    std::atomic<bool> helper_ran{false};
    std::vector<std::atomic<int>> runs(8);
    parallel_for(8, [&](size_t t) {
      runs[t].fetch_add(1);
      if (std::this_thread::get_id() != caller) {
        helper_ran = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(30));  // a descheduled helper
      } else {
        spin_for(std::chrono::microseconds(300));
      }
    });
    for (size_t t = 0; t < 8; ++t)
      if (runs[t].load() != 1) fail_plain("threadpool: task %zu ran %d times", t, runs[t].load());
    if (!helper_ran) continue;  // the helper never started: nothing to back off from; try again
    straggled = true;
    if (pool_stragglers() != before + 1) fail_plain("threadpool: a 30 ms straggler was not counted");
    // Right after it: the caller runs every task itself.
    std::mutex mu;
    std::set<std::thread::id> who;
    parallel_for(16, [&](size_t) {
      spin_for(std::chrono::microseconds(50));
      std::lock_guard<std::mutex> lk(mu);
      who.insert(std::this_thread::get_id());
    });
    if (who.size() != 1 || *who.begin() != caller) fail_plain("threadpool: the call after a straggler used helpers");
  }
  if (!straggled) fail_plain("threadpool: no helper ran a task in 50 calls");
  // After the backoff (5 ms after one straggler), helpers join again.
  bool helped = false;
  for (int attempt = 0; attempt < 50 && !helped; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::atomic<bool> h{false};
    parallel_for(16, [&](size_t) {
      spin_for(std::chrono::microseconds(200));
      if (std::this_thread::get_id() != caller) h = true;
    });
    helped = h;
  }
  if (!helped) fail_plain("threadpool: helpers never joined again after the backoff");
  set_num_threads(saved);
}

TestSuite suite("threadpool", test_straggler_backoff);

}  // namespace
}  // namespace qk
