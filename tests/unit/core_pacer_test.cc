// The orphan guard's restart policy (core/pacer.h), against a clock the test moves.
#include <doctest/doctest.h>

#include "pacer.h"

using namespace std::chrono_literals;
using vigil::core::guard_pacer;
using vigil::core::RestartPacer;

TEST_CASE(
    "a guard that keeps dying is retried after 0.1s, twice as long each time, up to a minute") {
  RestartPacer p = guard_pacer();
  std::chrono::milliseconds t = 1'000'000ms;
  p.started(t);
  const std::chrono::milliseconds expected[] = {100ms,   200ms,   400ms,   800ms,
                                                1600ms,  3200ms,  6400ms,  12800ms,
                                                25600ms, 51200ms, 60000ms, 60000ms};
  for (auto want : expected) {
    t += 50ms;  // it dies soon after each start
    const auto delay = p.exited(t);
    CHECK(delay == want);
    t += delay;
    p.started(t);
  }
  CHECK(p.at_cap(60000ms));
  CHECK_FALSE(p.at_cap(51200ms));
}

TEST_CASE("the delays start over once a guard has run for 10s") {
  RestartPacer p = guard_pacer();
  std::chrono::milliseconds t = 5'000ms;
  p.started(t);
  for (int i = 0; i < 5; ++i) {
    t += 10ms;
    t += p.exited(t);
    p.started(t);
  }
  // 9.999s is not stable yet: the streak goes on.
  t += 9'999ms;
  CHECK(p.exited(t) == 3200ms);
  t += 3200ms;
  p.started(t);
  // 10s is: the next delay is the first again, and grows from there.
  t += 10'000ms;
  CHECK(p.exited(t) == 100ms);
  t += 100ms;
  p.started(t);
  t += 1ms;
  CHECK(p.exited(t) == 200ms);
}

TEST_CASE("a guard that cannot be started at all counts as failing, with no reset") {
  RestartPacer p = guard_pacer();
  p.started(0ms);
  CHECK(p.failed_to_start() == 100ms);
  p.started(100ms);
  CHECK(p.failed_to_start() == 200ms);
  // A later start that runs stably resets it.
  p.started(300ms);
  CHECK(p.exited(60'300ms) == 100ms);
}
