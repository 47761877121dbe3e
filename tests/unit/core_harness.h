// A fake world for the core: a clock the test moves by hand and a spawner that hands out
// pids (or fails on request). It carries out Effects exactly as the daemon does, so the
// job life cycle is tested in microseconds, without forking.
#pragma once

#include <map>
#include <string>
#include <variant>
#include <vector>

#include "effects.h"
#include "spec.h"
#include "supervisor.h"

namespace vigil::test {

using namespace std::chrono_literals;
using core::ExitStatus;
using core::State;

inline config::JobSpec job_spec(std::string name) {
  config::JobSpec s;
  s.name = std::move(name);
  s.argv = {"/bin/true"};
  s.stdout_log = {config::Output::Kind::file, "/log/" + s.name + ".out.log"};
  s.stderr_log = {config::Output::Kind::file, "/log/" + s.name + ".err.log"};
  return s;
}

struct World {
  core::Supervisor sup;
  core::Instant now{std::chrono::milliseconds{1'000'000}, 1'700'000'000.0};
  core::Effects fx;
  std::map<std::string, std::chrono::milliseconds> timers;  // armed deadlines by job
  std::vector<core::Kill> kills;
  std::vector<core::KillStrays> stray_kills;
  std::vector<core::StateChanged> changes;
  std::vector<core::Reply> replies;
  std::vector<std::string> forgotten;
  std::vector<std::string> spawns;  // job names, in spawn order
  std::map<std::string, std::string> fail_spawn;  // job -> reason its spawns fail with
  pid_t next_pid = 100;

  // Carries out every queued effect, as the daemon's effect loop does.
  void drain() {
    while (!fx.empty()) {
      core::Effect e = std::move(fx.front());
      fx.pop_front();
      if (auto* s = std::get_if<core::Spawn>(&e)) {
        spawns.push_back(s->job);
        auto f = fail_spawn.find(s->job);
        if (f != fail_spawn.end()) {
          sup.spawn_failed(s->job, f->second, now, fx);
        } else {
          sup.spawned(s->job, next_pid++, now, fx);
        }
      } else if (auto* k = std::get_if<core::Kill>(&e)) {
        kills.push_back(*k);
      } else if (auto* ks = std::get_if<core::KillStrays>(&e)) {
        stray_kills.push_back(*ks);
      } else if (auto* t = std::get_if<core::SetTimer>(&e)) {
        timers[t->job] = t->deadline;
      } else if (auto* c = std::get_if<core::ClearTimer>(&e)) {
        timers.erase(c->job);
      } else if (auto* ch = std::get_if<core::StateChanged>(&e)) {
        changes.push_back(*ch);
      } else if (auto* r = std::get_if<core::Reply>(&e)) {
        replies.push_back(*r);
      } else if (auto* f = std::get_if<core::Forget>(&e)) {
        forgotten.push_back(f->job);
        timers.erase(f->job);
      }
    }
  }

  void load(std::vector<config::JobSpec> specs) {
    sup.load(specs, now, fx);
    drain();
  }

  // Moves the clock forward, firing due timers in deadline order.
  void advance(std::chrono::milliseconds d) {
    const auto until = now.mono + d;
    for (;;) {
      std::string next;
      std::chrono::milliseconds when = until + 1ms;
      for (const auto& [job, deadline] : timers) {
        if (deadline <= until && deadline < when) {
          next = job;
          when = deadline;
        }
      }
      if (next.empty()) break;
      now = now + (when - now.mono);
      timers.erase(next);
      sup.timer_fired(next, now, fx);
      drain();
    }
    now = now + (until - now.mono);
  }

  core::Job& job(const std::string& name) { return *sup.find(name); }
  State state(const std::string& name) { return job(name).state(); }

  void exit(const std::string& name, ExitStatus status) {
    REQUIRE(job(name).pid() != 0);
    sup.child_exited(job(name).pid(), status, now, fx);
    drain();
  }

  std::vector<core::Job*> pick(std::vector<std::string> names) {
    auto r = sup.select(names, true);
    REQUIRE(std::holds_alternative<std::vector<core::Job*>>(r));
    return std::get<std::vector<core::Job*>>(r);
  }

  // The states a job went through, from the recorded changes.
  std::vector<std::string> path(const std::string& name) {
    std::vector<std::string> p;
    for (const auto& c : changes) {
      if (c.job == name) p.emplace_back(core::to_string(c.to));
    }
    return p;
  }
};

}  // namespace vigil::test
