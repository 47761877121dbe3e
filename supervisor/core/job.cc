// The job life cycle. States and their meaning follow supervisord:
//
//   stopped  --start-->  (spawn) starting --start_seconds--> running
//   starting --exit/spawn error--> backoff --delay--> (spawn) starting
//                                  ...or fatal once failed starts exceed start_retries
//   running  --exit--> restart policy: (spawn) at once if the run was stable,
//                      backoff if it was short, exited if no restart is wanted
//   starting/running --stop--> stopping --exit--> stopped
//                              stopping --stop_timeout--> SIGKILL
//
// What a run leaves behind once its leader has exited (strays_found): with kill_group it
// is killed at once; without, it runs on, holds the job's next start, and a stop takes
// the job through `stopping` (leftovers only) to `stopped` once the daemon finds it gone.
//
// The wanted state (wanted_up_) is kept apart from the actual one (state_): a stop moves
// `wanted` at once, the state follows as the process goes.
#include "job.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>

#include "values.h"

namespace vigil::core {

namespace {

constexpr int kSigKill = 9;
constexpr int kSigCont = 18;

// "0.2s", "12s", "3m05s": how long a process ran, for failure messages.
std::string format_run(milliseconds d) {
  char buf[32];
  auto ms = d.count();
  if (ms < 10'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  } else if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(ms / 1000));
  } else {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60'000),
                  static_cast<long long>((ms / 1000) % 60));
  }
  return buf;
}

// "pid 12" or "pids 12, 13, 14": at most 8 of them, and how many more.
std::string pid_list(const std::vector<pid_t>& pids) {
  constexpr std::size_t kShown = 8;
  std::string s = pids.size() == 1 ? "pid " : "pids ";
  for (std::size_t i = 0; i < pids.size() && i < kShown; ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(pids[i]);
  }
  if (pids.size() > kShown) s += " and " + std::to_string(pids.size() - kShown) + " more";
  return s;
}

std::string processes(std::size_t n) {
  return std::to_string(n) + (n == 1 ? " process" : " processes");
}

bool is_success(const config::JobSpec& spec, const ExitStatus& e) {
  if (e.signaled) return false;
  const auto& codes = spec.success_exit_codes;
  return std::find(codes.begin(), codes.end(), e.value) != codes.end();
}

}  // namespace

std::string_view to_string(State s) {
  switch (s) {
    case State::stopped: return "stopped";
    case State::starting: return "starting";
    case State::running: return "running";
    case State::backoff: return "backoff";
    case State::stopping: return "stopping";
    case State::exited: return "exited";
    case State::fatal: return "fatal";
  }
  return "unknown";
}

std::string describe(const ExitStatus& e) {
  if (e.signaled) return "killed by signal " + config::signal_name(e.value);
  return "exited with status " + std::to_string(e.value);
}

milliseconds backoff_delay(const config::Backoff& b, int streak) {
  if (streak <= 0) return milliseconds{0};
  // Computed in floating point and capped before converting back, so a long streak
  // with a large factor cannot overflow.
  double delay = static_cast<double>(b.initial.count()) * std::pow(b.factor, streak - 1);
  double cap = static_cast<double>(b.max.count());
  if (!(delay < cap)) delay = cap;
  return milliseconds{static_cast<long long>(delay)};
}

milliseconds stable_after(const config::JobSpec& spec) {
  return std::max(spec.backoff.max, spec.start_seconds);
}

namespace {

// Where a job was written is the loader's business (it reports a job defined twice); the
// table keeps no copy of the file's path per job.
std::shared_ptr<const config::JobSpec> own(config::JobSpec spec) {
  spec.defined_at = {};
  return std::make_shared<const config::JobSpec>(std::move(spec));
}

}  // namespace

Job::Job(config::JobSpec spec, const Instant& loaded)
    : spec_(own(std::move(spec))), since_(loaded) {}

void Job::redefine(config::JobSpec spec) { spec_ = own(std::move(spec)); }

std::optional<milliseconds> Job::uptime(const Instant& now) const {
  if (state_ != State::running && state_ != State::starting && state_ != State::stopping) {
    return std::nullopt;
  }
  if (pid_ == 0) return std::nullopt;
  return now.mono - spawned_at_.mono;
}

std::string Job::failure_log() const {
  using Kind = config::Output::Kind;
  if (spec_->stderr_log.kind == Kind::file) return spec_->stderr_log.path;
  if (spec_->stdout_log.kind == Kind::file) return spec_->stdout_log.path;
  return {};
}

std::string Job::reason() const {
  std::string note = leftover_note();
  if (note.empty()) return reason_;
  if (reason_.empty()) return note;
  return reason_ + "; " + note;
}

std::vector<pid_t> Job::leftover_pids() const {
  std::vector<pid_t> pids;
  pids.reserve(leftovers_.size());
  for (const auto& s : leftovers_) pids.push_back(s.pid);
  return pids;
}

std::string Job::leftover_note() const {
  if (!spec_->kill_group && !leftovers_.empty()) {
    const std::size_t n = leftovers_.size();
    std::string note = pid_ > 0
                           ? processes(n) + " of an earlier run still " + (n == 1 ? "runs" : "run")
                           : "its main process has exited, but " + processes(n) + " of it still " +
                                 (n == 1 ? "runs" : "run");
    note += " (" + pid_list(leftover_pids()) + ")";
    if (held_)
      note += n == 1 ? ": restarted once it has exited" : ": restarted once they have exited";
    return note;
  }
  if (!killed_.empty()) {
    return "killed " + processes(killed_.size()) + " it left outside its process group (" +
           pid_list(killed_) +
           "): a program that daemonizes itself needs its foreground option, or kill_group: "
           "false";
  }
  return {};
}

bool Job::start_refused() const {
  return refused_;
}

bool Job::held_by_leftovers() const {
  return !spec_->kill_group && !leftovers_.empty() && pid_ == 0 && !spawning_;
}

std::string Job::refusal() const {
  const std::size_t n = leftovers_.size();
  return processes(n) + " of its last run still " + (n == 1 ? "runs" : "run") + " (" +
         pid_list(leftover_pids()) +
         "), and a start would add another copy (kill_group is false): stop or restart the "
         "job, which stops " +
         (n == 1 ? "it" : "them") + " first";
}

bool Job::active() const {
  return spawning_ || state_ == State::starting || state_ == State::running ||
         state_ == State::stopping;
}

// --- What the user asks for ---

void Job::start(const Instant& now, Effects& out) {
  // Refused: the requester is told why (Supervisor::outcome).
  refused_ = state_ != State::stopping && held_by_leftovers();
  if (refused_) return;
  wanted_up_ = true;
  switch (state_) {
    case State::stopped:
    case State::exited:
    case State::fatal:
    case State::backoff:
      // A person asking for a start gets a fresh set of retries and no waiting.
      clear_timer(out);
      failed_starts_ = 0;
      crash_streak_ = 0;
      spawn_now(now, out);
      break;
    case State::stopping:
      start_after_stop_ = true;
      break;
    case State::starting:
    case State::running:
      break;
  }
}

void Job::stop(const Instant& now, Effects& out) {
  wanted_up_ = false;
  start_after_stop_ = false;
  switch (state_) {
    case State::starting:
    case State::running:
      send_stop(now, out);
      break;
    case State::backoff:
      clear_timer(out);
      reason_.clear();
      held_ = false;
      if (held_by_leftovers()) {
        stop_leftovers(now, out);
      } else {
        become(State::stopped, now, out);
      }
      break;
    case State::stopped:
    case State::exited:
    case State::fatal:
      if (held_by_leftovers()) stop_leftovers(now, out);
      break;
    case State::stopping:
      break;
  }
}

void Job::restart(const Instant& now, Effects& out) {
  if (state_ != State::stopping && held_by_leftovers()) {
    // What the last run left goes first, then the job starts afresh.
    stop(now, out);
    wanted_up_ = true;
    start_after_stop_ = true;
  } else if (state_ == State::starting || state_ == State::running) {
    stop(now, out);
    wanted_up_ = true;
    start_after_stop_ = true;
  } else if (state_ == State::stopping) {
    wanted_up_ = true;
    start_after_stop_ = true;
  } else {
    start(now, out);
  }
}

// --- What the world reports ---

void Job::spawned(pid_t pid, const Instant& now, Effects& out) {
  spawning_ = false;
  pid_ = pid;
  spawned_at_ = now;
  reason_.clear();
  killed_.clear();
  held_ = false;
  become(State::starting, now, out);
  if (spec_->start_seconds.count() <= 0) {
    failed_starts_ = 0;
    become(State::running, now, out);
  } else {
    set_timer(now.mono + spec_->start_seconds, out);
  }
}

void Job::spawn_failed(const std::string& reason, const Instant& now, Effects& out) {
  spawning_ = false;
  pid_ = 0;
  reason_ = reason;
  failed_start(now, out);
}

void Job::exited(ExitStatus status, const Instant& now, Effects& out) {
  const pid_t was = pid_;
  const milliseconds ran = now.mono - spawned_at_.mono;
  pid_ = 0;
  last_pid_ = was;
  last_exit_ = status;

  // A leader's exit ends its job: stragglers left in its process group would otherwise
  // outlive it and be orphaned (they may hold the job's ports or files).
  if (spec_->kill_group && was > 0) out.push_back(Kill{name(), was, kSigKill, true});
  // What the daemon found of this run outside the group is left over now. With
  // kill_group it dies too: at once when the leader went on its own; in a stop, which
  // sent it the stop signal with the group, once stop_timeout has passed (below). Without
  // kill_group it runs on, and holds a restart.
  const bool stray_stop = spec_->kill_group && state_ == State::stopping && !strays_.empty();
  if (!strays_.empty()) {
    for (pid_t p : strays_) leftovers_.push_back({p, true});
    std::sort(leftovers_.begin(), leftovers_.end(),
              [](const Stray& a, const Stray& b) { return a.pid < b.pid; });
    leftovers_.erase(std::unique(leftovers_.begin(), leftovers_.end(),
                                 [](const Stray& a, const Stray& b) { return a.pid == b.pid; }),
                     leftovers_.end());
    if (spec_->kill_group && !stray_stop) {
      killed_.insert(killed_.end(), strays_.begin(), strays_.end());
      signal_strays(std::move(strays_), kSigKill, out);
    }
    strays_.clear();
  }

  switch (state_) {
    case State::starting:
      clear_timer(out);
      if (is_success(*spec_, status) && spec_->restart != config::RestartPolicy::always) {
        // A one-shot job that finished its work quickly: done, not a failed start.
        reason_.clear();
        become(State::exited, now, out, status);
        return;
      }
      reason_ = describe(status) + " after " + format_run(ran);
      failed_start(now, out);
      return;

    case State::running: {
      const bool success = is_success(*spec_, status);
      const bool again = spec_->restart == config::RestartPolicy::always ||
                         (spec_->restart == config::RestartPolicy::on_failure && !success);
      reason_ = success ? std::string{} : describe(status) + " after " + format_run(ran);
      if (!again) {
        become(State::exited, now, out, status);
        return;
      }
      if (ran >= stable_after(*spec_)) {
        // It ran stably: the crash is news, not a loop. Restart at once.
        crash_streak_ = 0;
        become(State::exited, now, out, status);
        auto_spawn(now, out);
      } else {
        retry_later(++crash_streak_, now, out);
      }
      return;
    }

    case State::stopping:
      if (stray_stop) return;  // stopping until they have gone too (leftovers_gone)
      clear_timer(out);
      become(State::stopped, now, out, status);
      if (start_after_stop_ && wanted_up_) {
        if (held_by_leftovers()) {
          stop_leftovers(now, out);  // what it left goes too, then the start
          return;
        }
        start_after_stop_ = false;
        failed_starts_ = 0;
        crash_streak_ = 0;
        spawn_now(now, out);
      }
      return;

    case State::stopped:
    case State::backoff:
    case State::exited:
    case State::fatal:
      // No process of ours should be running in these states; nothing to do.
      return;
  }
}

void Job::timer_fired(const Instant& now, Effects& out) {
  if (!timer_ || now.mono < *timer_) return;  // stale or early: not ours to act on
  timer_.reset();
  switch (state_) {
    case State::starting:
      failed_starts_ = 0;
      become(State::running, now, out);
      break;
    case State::backoff:
      auto_spawn(now, out);
      break;
    case State::stopping:
      reason_ = "did not stop within " + config::format_duration(spec_->stop_timeout) +
                ", killed";
      if (pid_ > 0) out.push_back(Kill{name(), pid_, kSigKill, spec_->kill_group});
      if (spec_->kill_group) {
        signal_strays(strays_, kSigKill, out);
        signal_strays(leftover_pids(), kSigKill, out);
      } else if (pid_ == 0) {
        signal_strays(leftover_pids(), kSigKill, out);  // a stop of what a run left
      }
      break;
    case State::stopped:
    case State::running:
    case State::exited:
    case State::fatal:
      break;
  }
}

// --- Internals ---

void Job::spawn_now(const Instant&, Effects& out) {
  spawning_ = true;
  refused_ = false;
  out.push_back(Spawn{name(), ++run_});
}

void Job::auto_spawn(const Instant& now, Effects& out) {
  if (held_by_leftovers()) {
    // Another copy would run beside what the last run left: wait until that has gone
    // (leftovers_gone), in backoff with no timer.
    held_ = true;
    if (state_ != State::backoff) become(State::backoff, now, out, last_exit_);
    return;
  }
  ++restarts_;
  spawn_now(now, out);
}

void Job::stop_leftovers(const Instant& now, Effects& out) {
  clear_timer(out);
  held_ = false;
  refused_ = false;
  const std::vector<pid_t> pids = leftover_pids();
  signal_strays(pids, spec_->stop_signal, out);
  if (spec_->stop_signal != kSigCont && spec_->stop_signal != kSigKill) {
    signal_strays(pids, kSigCont, out);
  }
  become(State::stopping, now, out);
  set_timer(now.mono + spec_->stop_timeout, out);
}

void Job::signal_strays(std::vector<pid_t> pids, int signo, Effects& out) const {
  if (!pids.empty()) out.push_back(KillStrays{name(), std::move(pids), signo});
}

void Job::strays_found(std::vector<pid_t> current, std::vector<Stray> leftovers, const Instant& now,
                       Effects& out) {
  std::sort(current.begin(), current.end());
  std::sort(leftovers.begin(), leftovers.end(),
            [](const Stray& a, const Stray& b) { return a.pid < b.pid; });
  if (pid_ > 0) {
    if (state_ == State::stopping && spec_->kill_group) {
      // Found after the stop signal went out to the group: they get it now.
      std::vector<pid_t> late;
      std::set_difference(current.begin(), current.end(), strays_.begin(), strays_.end(),
                          std::back_inserter(late));
      signal_strays(late, spec_->stop_signal, out);
      if (spec_->stop_signal != kSigCont && spec_->stop_signal != kSigKill) {
        signal_strays(std::move(late), kSigCont, out);
      }
    }
    strays_ = std::move(current);
  } else {
    // No leader: whatever is found is left over.
    for (pid_t p : current) leftovers.push_back({p, true});
    strays_.clear();
  }
  if (spec_->kill_group && !leftovers.empty()) {
    std::vector<pid_t> pids;
    if (state_ == State::stopping) {
      // A stop is on: those it has not signalled yet get its signal now, and all of them
      // SIGKILL when stop_timeout has passed (timer_fired).
      for (const auto& s : leftovers) {
        const bool known = std::any_of(leftovers_.begin(), leftovers_.end(),
                                       [&](const Stray& k) { return k.pid == s.pid; });
        if (!known) pids.push_back(s.pid);
      }
      signal_strays(pids, spec_->stop_signal, out);
      if (spec_->stop_signal != kSigCont && spec_->stop_signal != kSigKill) {
        signal_strays(std::move(pids), kSigCont, out);
      }
    } else {
      // What a leader leaves dies with it, outside its process group as inside.
      for (const auto& s : leftovers) {
        pids.push_back(s.pid);
        const bool noted = std::find(killed_.begin(), killed_.end(), s.pid) != killed_.end();
        if (s.left_group && wanted_up_ && !noted) killed_.push_back(s.pid);
      }
      std::sort(killed_.begin(), killed_.end());
      signal_strays(std::move(pids), kSigKill, out);
    }
  }
  const bool had = !leftovers_.empty();
  leftovers_ = std::move(leftovers);
  if (had && leftovers_.empty()) leftovers_gone(now, out);
}

void Job::leftovers_gone(const Instant& now, Effects& out) {
  if (state_ == State::stopping && pid_ == 0 && !spawning_) {
    // A stop of what the last run left is done.
    clear_timer(out);
    become(State::stopped, now, out, last_exit_);
    if (start_after_stop_ && wanted_up_) {
      start_after_stop_ = false;
      failed_starts_ = 0;
      crash_streak_ = 0;
      spawn_now(now, out);
    }
  } else if (held_ && state_ == State::backoff) {
    held_ = false;
    ++restarts_;
    spawn_now(now, out);
  }
}

void Job::failed_start(const Instant& now, Effects& out) {
  ++failed_starts_;
  if (failed_starts_ > spec_->start_retries) {
    reason_ += " (gave up after " + std::to_string(failed_starts_) + " attempts)";
    become(State::fatal, now, out, last_exit_);
    return;
  }
  retry_later(++crash_streak_, now, out);
}

void Job::retry_later(int streak, const Instant& now, Effects& out) {
  const milliseconds delay = backoff_delay(spec_->backoff, streak);
  become(State::backoff, now, out, last_exit_);
  if (delay.count() <= 0) {
    auto_spawn(now, out);
  } else {
    set_timer(now.mono + delay, out);
  }
}

void Job::send_stop(const Instant& now, Effects& out) {
  clear_timer(out);
  if (pid_ > 0) {
    out.push_back(Kill{name(), pid_, spec_->stop_signal, spec_->kill_group});
    if (spec_->kill_group) signal_strays(strays_, spec_->stop_signal, out);
    // A stopped (SIGSTOP) process cannot act on its stop signal until it runs again.
    if (spec_->stop_signal != kSigCont && spec_->stop_signal != kSigKill) {
      out.push_back(Kill{name(), pid_, kSigCont, spec_->kill_group});
      if (spec_->kill_group) signal_strays(strays_, kSigCont, out);
    }
  }
  become(State::stopping, now, out);
  set_timer(now.mono + spec_->stop_timeout, out);
}

void Job::become(State to, const Instant& now, Effects& out, std::optional<ExitStatus> exit) {
  const State from = state_;
  state_ = to;
  since_ = now;
  // An exit is reported with the pid that exited; anything else with the current one.
  const pid_t pid = pid_ != 0 ? pid_ : (exit ? last_pid_ : 0);
  out.push_back(StateChanged{name(), from, to, pid, exit, reason(), now.unix_seconds});
}

void Job::set_timer(milliseconds deadline, Effects& out) {
  timer_ = deadline;
  out.push_back(SetTimer{name(), deadline});
}

void Job::clear_timer(Effects& out) {
  if (!timer_) return;
  timer_.reset();
  out.push_back(ClearTimer{name()});
}

}  // namespace vigil::core
