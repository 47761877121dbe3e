// When to restart a helper that vigild keeps running beside its jobs (the orphan guard):
// at once the first time, then after a delay that grows while it keeps failing, and
// from the first delay again once it has run stably. Pure: time comes in as an argument,
// so the policy is unit-tested with a fake clock.
#pragma once

#include <chrono>

#include "job.h"
#include "spec.h"

namespace vigil::core {

class RestartPacer {
 public:
  // Delays follow `backoff` (backoff_delay); a run of at least `stable` ends a streak.
  RestartPacer(config::Backoff backoff, std::chrono::milliseconds stable)
      : backoff_(backoff), stable_(stable) {}

  // It was (re)started at `now`.
  void started(std::chrono::milliseconds now) { started_ = now; }
  // It exited at `now`: the delay before the next start. A run that lasted `stable` was
  // fine: the streak starts over.
  std::chrono::milliseconds exited(std::chrono::milliseconds now) {
    if (now - started_ >= stable_) failures_ = 0;
    return backoff_delay(backoff_, ++failures_);
  }
  // It could not be started at all: the delay before the next try.
  std::chrono::milliseconds failed_to_start() { return backoff_delay(backoff_, ++failures_); }
  // The delay has reached its cap: it keeps failing.
  bool at_cap(std::chrono::milliseconds delay) const { return delay >= backoff_.max; }

 private:
  config::Backoff backoff_;
  std::chrono::milliseconds stable_;
  std::chrono::milliseconds started_{0};
  int failures_ = 0;  // in a row: the streak for the delay
};

// The orphan guard's: retried after 0.1s, 0.2s, 0.4s ... up to once a minute, never in a
// tight loop; a guard that ran 10s before it exited was fine, and the next delay is the
// first again (docs/guarantees.md).
inline RestartPacer guard_pacer() {
  return RestartPacer(config::Backoff{std::chrono::milliseconds(100), std::chrono::minutes(1), 2.0},
                      std::chrono::seconds(10));
}

}  // namespace vigil::core
