// Waiter: requests parked until a position is applied (a read with
// ?position=TOKEN, a command with ?wait=true), answered by a thread of its
// own. Stream threads never wait for it: they append to the PositionLog,
// which wakes the waiter on every commit; HTTP I/O threads never wait
// either: they park the request and return.
//
// Owned by HttpApi, which stops it before the engine's parts go away.
// Thread-safety: Park() and Stop() may be called from any thread; the
// callbacks run on the caller's thread (answered at once) or the waiter's.
#ifndef KCQRS_ENGINE_SERVING_WAITER_H_
#define KCQRS_ENGINE_SERVING_WAITER_H_

#include <functional>
#include <list>
#include <mutex>
#include <thread>

#include "engine/serving/position_log.h"
#include "engine/serving/route_helpers.h"

namespace kcqrs::engine {

class Waiter {
 public:
  struct Parked {
    std::function<PositionLog::Answer()> check;
    std::function<void()> on_applied;
    std::function<void(PositionLog::Answer)> on_give_up;  // too old, or time-out
    Clock::time_point deadline;
  };

  // `log` must outlive the waiter.
  explicit Waiter(const PositionLog* log);
  ~Waiter();

  // Checks at once (most reads need no wait), else parks until the position
  // is applied, too old, or the deadline passes. After Stop(), gives up at
  // once (on_give_up with kPending).
  void Park(Parked p);

  // Gives up on every parked request (on_give_up with kPending) and joins
  // the thread. Idempotent.
  void Stop();

 private:
  void Run();

  const PositionLog* log_;
  std::mutex mu_;
  std::list<Parked> parked_;  // guarded by mu_
  bool stopping_ = false;     // guarded by mu_
  std::thread thread_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_SERVING_WAITER_H_
