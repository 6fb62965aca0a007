#include "engine/serving/waiter.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <optional>
#include <utility>

namespace kcqrs::engine {
namespace {

// Runs a parked request's callback. One that throws (a bug, or a stored
// document of a shape nobody expected) must not end the waiter thread or
// the process: it is logged, and the request dropped with it, so its
// Responder dies unanswered and the server answers 500.
template <typename F>
void Guard(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    spdlog::error("http: a waiting request failed: {}", e.what());
  } catch (...) {
    spdlog::error("http: a waiting request failed with an unknown exception");
  }
}

}  // namespace

Waiter::Waiter(const PositionLog* log) : log_(log) {
  thread_ = std::thread([this] { Run(); });
}

Waiter::~Waiter() { Stop(); }

void Waiter::Park(Parked p) {
  std::optional<PositionLog::Answer> answer;
  Guard([&] { answer = p.check(); });
  if (!answer) return;  // dropped: answered 500
  if (*answer == PositionLog::Answer::kApplied) return Guard(p.on_applied);
  if (*answer == PositionLog::Answer::kTooOld) return Guard([&] { p.on_give_up(*answer); });
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) {
    lock.unlock();
    return Guard([&] { p.on_give_up(PositionLog::Answer::kPending); });
  }
  parked_.push_back(std::move(p));
}

void Waiter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  // Taken after the join: a round of Run() in progress puts back what it
  // has not answered, and that must be answered too, not dropped.
  std::list<Parked> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(parked_);
  }
  for (Parked& p : left) Guard([&] { p.on_give_up(PositionLog::Answer::kPending); });
}

void Waiter::Run() {
  uint64_t seen = log_->version();
  for (;;) {
    // Woken by every commit; the time-out bounds how late a deadline is.
    log_->WaitForChange(seen, std::chrono::milliseconds(50));
    seen = log_->version();
    std::list<Parked> batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      batch.swap(parked_);
    }
    const auto now = Clock::now();
    std::list<Parked> still;
    for (Parked& p : batch) {
      std::optional<PositionLog::Answer> answer;
      Guard([&] { answer = p.check(); });
      if (!answer) continue;  // dropped: answered 500
      if (*answer == PositionLog::Answer::kApplied) {
        Guard(p.on_applied);
      } else if (*answer == PositionLog::Answer::kTooOld || now >= p.deadline) {
        Guard([&] { p.on_give_up(*answer); });
      } else {
        still.push_back(std::move(p));
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    parked_.splice(parked_.end(), still);
  }
}

}  // namespace kcqrs::engine
