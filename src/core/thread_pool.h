// A fixed pool of worker threads for data-parallel loops.
//
// A decode step runs hundreds of short parallel regions, so waking workers must
// be cheap: workers spin briefly on an epoch counter before sleeping on a
// condition variable. The calling thread is worker 0 and takes part in the work,
// so a pool of N threads starts N-1 OS threads. Each task receives its worker
// index, which indexes per-thread scratch buffers without thread_local.
#pragma once

#include <atomic>
#include <cstdint>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace llm {

// Told how long each worker was busy in each parallel region (the profiler
// implements it to draw per-thread tracks). Called from the worker's thread.
class ParallelObserver {
 public:
  virtual ~ParallelObserver() = default;
  virtual bool observing() const = 0;
  virtual void OnWorkerSpan(int worker, int64_t begin_ns, int64_t end_ns) = 0;
};

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }
  void set_observer(ParallelObserver* observer) { observer_ = observer; }

  // Calls fn(task, worker) for task in [0, num_tasks), spread over the workers;
  // returns when all are done. Tasks are handed out dynamically (atomic counter).
  void ParallelFor(size_t num_tasks, const std::function<void(size_t task, int worker)>& fn);

  // Splits [0, n) into contiguous ranges, roughly `grain` long, one call each.
  void ParallelRange(size_t n, size_t grain,
                     const std::function<void(size_t begin, size_t end, int worker)>& fn);

 private:
  void WorkerLoop(int worker);
  void RunTasks(int worker);

  int num_threads_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> epoch_{0};
  std::atomic<int> busy_workers_{0};
  std::atomic<size_t> next_task_{0};
  size_t num_tasks_ = 0;
  const std::function<void(size_t, int)>* fn_ = nullptr;
  std::atomic<bool> stop_{false};
  ParallelObserver* observer_ = nullptr;
};

// Number of hardware threads usable by this process (affinity aware).
int AvailableCpuThreads();

}  // namespace llm
