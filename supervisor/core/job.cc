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
// The wanted state (wanted_up_) is kept apart from the actual one (state_): a stop moves
// `wanted` at once, the state follows as the process goes.
#include "job.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

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

bool Job::active() const {
  return spawning_ || state_ == State::starting || state_ == State::running ||
         state_ == State::stopping;
}

// --- What the user asks for ---

void Job::start(const Instant& now, Effects& out) {
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
      become(State::stopped, now, out);
      break;
    case State::stopping:
    case State::stopped:
    case State::exited:
    case State::fatal:
      break;
  }
}

void Job::restart(const Instant& now, Effects& out) {
  if (state_ == State::starting || state_ == State::running) {
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
        ++restarts_;
        spawn_now(now, out);
      } else {
        retry_later(++crash_streak_, now, out);
      }
      return;
    }

    case State::stopping:
      clear_timer(out);
      become(State::stopped, now, out, status);
      if (start_after_stop_ && wanted_up_) {
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
      ++restarts_;
      spawn_now(now, out);
      break;
    case State::stopping:
      reason_ = "did not stop within " + config::format_duration(spec_->stop_timeout) +
                ", killed";
      if (pid_ > 0) out.push_back(Kill{name(), pid_, kSigKill, spec_->kill_group});
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
  out.push_back(Spawn{name()});
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
    ++restarts_;
    spawn_now(now, out);
  } else {
    set_timer(now.mono + delay, out);
  }
}

void Job::send_stop(const Instant& now, Effects& out) {
  clear_timer(out);
  if (pid_ > 0) {
    out.push_back(Kill{name(), pid_, spec_->stop_signal, spec_->kill_group});
    // A stopped (SIGSTOP) process cannot act on its stop signal until it runs again.
    if (spec_->stop_signal != kSigCont && spec_->stop_signal != kSigKill) {
      out.push_back(Kill{name(), pid_, kSigCont, spec_->kill_group});
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
  out.push_back(StateChanged{name(), from, to, pid, exit, reason_, now.unix_seconds});
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
