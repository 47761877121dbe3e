// The job table: routing, selection, reload, shutdown and waiters. The per-job rules are in
// job.cc; this file only decides which job an event or request concerns.
#include "supervisor.h"

#include <fnmatch.h>

#include <algorithm>
#include <utility>

#include "values.h"

namespace vigil::core {

namespace {

bool is_glob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

}  // namespace

Job& Supervisor::add(config::JobSpec spec, const Instant& now) {
  auto job = std::make_unique<Job>(std::move(spec), now);
  Job& ref = *job;
  by_name_[ref.name()] = &ref;
  jobs_.push_back(std::move(job));
  return ref;
}

Job* Supervisor::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

void Supervisor::load(const std::vector<config::JobSpec>& jobs, const Instant& now,
                      Effects& out) {
  for (const auto& spec : jobs) {
    Job& job = add(spec, now);
    if (spec.autostart) job.start(now, out);
  }
  settle(out);
}

ReloadReport Supervisor::reload(const std::vector<config::JobSpec>& jobs, const Instant& now,
                                Effects& out) {
  ReloadReport report;
  std::set<std::string> wanted;
  for (const auto& spec : jobs) wanted.insert(spec.name);

  // Removed first, so their processes are on their way down before new ones start.
  for (const auto& job : jobs_) {
    if (wanted.count(job->name()) || removing_.count(job->name())) continue;
    report.removed.push_back(job->name());
    removing_.insert(job->name());
    redefine_.erase(job->name());
    job->stop(now, out);
  }

  for (const auto& spec : jobs) {
    Job* job = find(spec.name);
    if (job != nullptr && removing_.count(spec.name)) {
      // Removed by an earlier reload and still stopping: it comes back as a changed job.
      removing_.erase(spec.name);
      redefine_[spec.name] = spec;
      if (spec.autostart && !shutting_down_) job->restart(now, out);
      report.changed.push_back(spec.name);
      continue;
    }
    if (job == nullptr) {
      report.added.push_back(spec.name);
      Job& added = add(spec, now);
      if (spec.autostart && !shutting_down_) added.start(now, out);
      continue;
    }
    if (job->spec().same_definition(spec)) {
      // The job keeps the definition it has: a copy of an equal one, allocated among
      // the loader's freed memory, would pin the heap that loader used (about 0.8 MiB
      // more after each reload of 1000 unchanged jobs).
      report.unchanged.push_back(spec.name);
      continue;
    }
    report.changed.push_back(spec.name);
    const bool keep_up = job->wanted_up() || spec.autostart;
    if (job->active()) {
      redefine_[spec.name] = spec;
      if (keep_up && !shutting_down_) {
        job->restart(now, out);
      } else {
        job->stop(now, out);
      }
    } else {
      job->redefine(spec);
      if (keep_up && !shutting_down_) job->start(now, out);
    }
  }

  // Keep definition order: the order of the new config, removed jobs (still stopping) last.
  std::map<std::string, std::size_t> rank;
  for (std::size_t i = 0; i < jobs.size(); ++i) rank[jobs[i].name] = i;
  std::stable_sort(jobs_.begin(), jobs_.end(), [&](const auto& a, const auto& b) {
    auto ra = rank.count(a->name()) ? rank[a->name()] : jobs.size();
    auto rb = rank.count(b->name()) ? rank[b->name()] : jobs.size();
    return ra < rb;
  });

  settle(out);
  return report;
}

std::variant<std::vector<Job*>, SelectError> Supervisor::select(
    const std::vector<std::string>& names, bool allow_all) const {
  std::vector<Job*> picked;
  auto take = [&](Job* job) {
    if (std::find(picked.begin(), picked.end(), job) == picked.end()) picked.push_back(job);
  };
  if (names.empty() || (allow_all && names.size() == 1 && names[0] == "all")) {
    // Each job once already: no need for take()'s search, which is quadratic in the jobs.
    for (const auto& job : jobs_) {
      if (!removing_.count(job->name())) picked.push_back(job.get());
    }
    return picked;
  }
  for (const auto& name : names) {
    if (allow_all && name == "all") {
      for (const auto& job : jobs_) {
        if (!removing_.count(job->name())) take(job.get());
      }
      continue;
    }
    bool matched = false;
    if (is_glob(name)) {
      for (const auto& job : jobs_) {
        if (removing_.count(job->name())) continue;
        if (fnmatch(name.c_str(), job->name().c_str(), 0) == 0) {
          take(job.get());
          matched = true;
        }
      }
      if (!matched) return SelectError{"no job matches '" + name + "'"};
      continue;
    }
    Job* job = find(name);
    if (job == nullptr || removing_.count(name)) {
      std::vector<std::string> candidates;
      for (const auto& j : jobs_) {
        if (!removing_.count(j->name())) candidates.push_back(j->name());
      }
      std::string msg = "no job named '" + name + "'";
      if (auto close = config::did_you_mean(name, candidates)) {
        msg += " (did you mean '" + *close + "'?)";
      }
      return SelectError{msg};
    }
    take(job);
  }
  return picked;
}

std::variant<Job*, SelectError> Supervisor::select_one(const std::string& name) const {
  auto picked = select({name}, false);
  if (auto* e = std::get_if<SelectError>(&picked)) return std::move(*e);
  const auto& jobs = std::get<std::vector<Job*>>(picked);
  if (jobs.size() == 1) return jobs.front();
  // A reader needs the names to pick one; a glob over a thousand jobs needs only a few.
  constexpr std::size_t kShown = 10;
  std::string list;
  for (std::size_t i = 0; i < jobs.size() && i < kShown; ++i) {
    list += (i == 0 ? "" : ", ") + jobs[i]->name();
  }
  if (jobs.size() > kShown) list += " and " + std::to_string(jobs.size() - kShown) + " more";
  return SelectError{
      "'" + name + "' matches " + std::to_string(jobs.size()) + " jobs (" + list + ")", true};
}

void Supervisor::start(const std::vector<Job*>& jobs, const Instant& now, Effects& out) {
  if (shutting_down_) return;
  for (Job* job : jobs) job->start(now, out);
  settle(out);
}

void Supervisor::stop(const std::vector<Job*>& jobs, const Instant& now, Effects& out) {
  for (Job* job : jobs) job->stop(now, out);
  settle(out);
}

void Supervisor::restart(const std::vector<Job*>& jobs, const Instant& now, Effects& out) {
  if (shutting_down_) return;
  for (Job* job : jobs) job->restart(now, out);
  settle(out);
}

std::optional<Outcome> Supervisor::outcome(const Job& job, Goal goal) const {
  Outcome o;
  o.job = job.name();
  o.state = job.state();
  o.pid = job.pid();
  const bool moving = job.active() && job.state() != State::running;
  if (goal == Goal::up && job.start_refused() && job.held_by_leftovers() && !job.active()) {
    o.ok = false;
    o.message = job.refusal();
    return o;
  }
  if (goal == Goal::down) {
    if (job.active()) return std::nullopt;
    o.ok = true;
    o.message = std::string(to_string(job.state()));
    return o;
  }
  if (moving) return std::nullopt;
  switch (job.state()) {
    case State::running:
      o.ok = true;
      o.message = "running";
      return o;
    case State::exited: {
      // A one-shot that finished with a success code did what it was started for (and
      // what it left running, without kill_group, is said too).
      o.ok = !job.failed();
      const std::string why = job.reason();
      if (o.ok) {
        o.message = job.last_exit() ? describe(*job.last_exit()) : "exited";
        if (!why.empty()) o.message += "; " + why;
      } else {
        o.message = why;
      }
      break;
    }
    case State::backoff:
    case State::fatal:
      o.ok = false;
      o.message = job.reason().empty() ? std::string(to_string(job.state())) : job.reason();
      break;
    case State::stopped:
      if (job.wanted_up()) return std::nullopt;  // a restart between its stop and start
      // Stopped while the start waited: nothing of the job's own went wrong, so there is
      // no log to point at, only who stopped it (a reload that removes it says so apart).
      o.ok = false;
      o.message = shutting_down_ ? "start cancelled: vigild is shutting down"
                                 : "start cancelled: it was stopped by a stop request";
      return o;
    case State::starting:
    case State::stopping:
      return std::nullopt;
  }
  if (!o.ok) o.log = job.failure_log();
  return o;
}

std::uint64_t Supervisor::wait_for(const std::vector<Job*>& jobs, Goal goal, Effects& out) {
  const std::uint64_t id = next_waiter_++;
  Waiter w{goal, {}, {}, {}};
  for (Job* job : jobs) w.pending.push_back(job->name());
  w.order = w.pending;
  waiters_.emplace(id, std::move(w));
  settle(out);
  return id;
}

void Supervisor::shutdown(const Instant& now, Effects& out) {
  shutting_down_ = true;
  // All at once: every job gets its stop signal now and its own stop_timeout, so the
  // whole shutdown takes as long as the slowest job, not the sum.
  for (const auto& job : jobs_) job->stop(now, out);
  settle(out);
}

bool Supervisor::quiescent() const {
  return std::none_of(jobs_.begin(), jobs_.end(),
                      [](const auto& j) { return j->active() || !j->leftovers().empty(); });
}

const Job* Supervisor::leader_of(pid_t pid) const {
  auto it = by_pid_.find(pid);
  return it == by_pid_.end() ? nullptr : it->second;
}

bool Supervisor::strays_found(const std::string& name, std::vector<pid_t> current,
                              std::vector<Stray> leftovers, const Instant& now, Effects& out) {
  Job* job = find(name);
  if (job == nullptr) return false;
  job->strays_found(std::move(current), std::move(leftovers), now, out);
  if (shutting_down_ && job->held_by_leftovers() && !job->active()) job->stop(now, out);
  settle(out);
  return true;
}

bool Supervisor::child_exited(pid_t pid, ExitStatus status, const Instant& now, Effects& out) {
  auto it = by_pid_.find(pid);
  if (it == by_pid_.end()) return false;
  Job* job = it->second;
  by_pid_.erase(it);
  job->exited(status, now, out);
  settle(out);
  return true;
}

bool Supervisor::spawned(const std::string& name, pid_t pid, const Instant& now, Effects& out) {
  Job* job = find(name);
  if (job == nullptr) return false;
  by_pid_[pid] = job;
  job->spawned(pid, now, out);
  settle(out);
  return true;
}

bool Supervisor::spawn_failed(const std::string& name, const std::string& reason,
                              const Instant& now, Effects& out) {
  Job* job = find(name);
  if (job == nullptr) return false;
  job->spawn_failed(reason, now, out);
  settle(out);
  return true;
}

bool Supervisor::timer_fired(const std::string& name, const Instant& now, Effects& out) {
  Job* job = find(name);
  if (job == nullptr) return false;
  job->timer_fired(now, out);
  settle(out);
  return true;
}

void Supervisor::settle(Effects& out) {
  // Definitions waiting for their job's process to go take effect now, before the
  // daemon carries out a Spawn that may already be queued.
  for (auto it = redefine_.begin(); it != redefine_.end();) {
    Job* job = find(it->first);
    const bool has_process = job != nullptr && job->pid() != 0;
    if (job != nullptr && !has_process) {
      job->redefine(std::move(it->second));
      it = redefine_.erase(it);
    } else if (job == nullptr) {
      it = redefine_.erase(it);
    } else {
      ++it;
    }
  }

  // Removed jobs leave the table once their process is gone.
  for (auto it = removing_.begin(); it != removing_.end();) {
    Job* job = find(*it);
    if (job != nullptr && job->active()) {
      ++it;
      continue;
    }
    if (job != nullptr) {
      for (auto& [id, w] : waiters_) {
        auto p = std::find(w.pending.begin(), w.pending.end(), *it);
        if (p == w.pending.end()) continue;
        w.pending.erase(p);
        Outcome o;
        o.job = *it;
        o.ok = w.goal == Goal::down;
        o.state = job->state();
        o.message = "removed by reload";
        w.outcomes.push_back(o);
      }
      by_name_.erase(*it);
      jobs_.erase(std::remove_if(jobs_.begin(), jobs_.end(),
                                 [&](const auto& j) { return j.get() == job; }),
                  jobs_.end());
      out.push_back(Forget{*it});
    }
    it = removing_.erase(it);
  }

  for (auto it = waiters_.begin(); it != waiters_.end();) {
    Waiter& w = it->second;
    for (auto p = w.pending.begin(); p != w.pending.end();) {
      const Job* job = find(*p);
      std::optional<Outcome> o;
      if (job == nullptr) {
        o = Outcome{*p, w.goal == Goal::down, State::stopped, 0, "removed by reload", {}};
      } else {
        o = outcome(*job, w.goal);
      }
      if (o) {
        w.outcomes.push_back(std::move(*o));
        p = w.pending.erase(p);
      } else {
        ++p;
      }
    }
    if (w.pending.empty()) {
      // Answer in the order the jobs were asked for, not the order they settled in.
      auto rank = [&](const Outcome& o) {
        return std::find(w.order.begin(), w.order.end(), o.job) - w.order.begin();
      };
      std::stable_sort(w.outcomes.begin(), w.outcomes.end(),
                       [&](const Outcome& a, const Outcome& b) { return rank(a) < rank(b); });
      out.push_back(Reply{it->first, std::move(w.outcomes)});
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace vigil::core
