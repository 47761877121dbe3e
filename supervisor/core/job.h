// One supervised job: its spec, what the user wants of it, and what its process is doing.
// Every rule of the job life cycle (start_seconds, backoff, start_retries, restart policy,
// stop escalation) lives in this class, so "what happens when a job exits" is answered in
// one function: Job::exited.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "effects.h"
#include "spec.h"

namespace vigil::core {

using std::chrono::milliseconds;

// The delay before the `streak`-th consecutive quick failure is retried:
// initial * factor^(streak-1), capped at max. streak 0 means no delay.
milliseconds backoff_delay(const config::Backoff& b, int streak);

// How long a run must last before the job counts as stable again, resetting its backoff.
// A run longer than the longest delay (backoff.max) cannot be slowed down further by
// backoff anyway, so that is where the slate is wiped; start_seconds when that is longer.
milliseconds stable_after(const config::JobSpec& spec);

class Job {
 public:
  // `loaded` is when vigild took the job on: its first state (stopped) starts then.
  Job(config::JobSpec spec, const Instant& loaded);

  // --- What the user asks for. Each sets the wanted state and acts on it. ---
  void start(const Instant& now, Effects& out);
  void stop(const Instant& now, Effects& out);
  void restart(const Instant& now, Effects& out);

  // --- What the world reports. ---
  void spawned(pid_t pid, const Instant& now, Effects& out);
  void spawn_failed(const std::string& reason, const Instant& now, Effects& out);
  void exited(ExitStatus status, const Instant& now, Effects& out);
  void timer_fired(const Instant& now, Effects& out);

  // Replaces the definition. A job whose process is running keeps it until the next
  // spawn; reload restarts changed jobs to make the new definition take effect.
  void redefine(config::JobSpec spec);

  const config::JobSpec& spec() const { return *spec_; }
  // The definition itself, for whoever needs it beyond a call (the job's output capture):
  // one copy per job however many hold it, immutable, alive as long as one does.
  const std::shared_ptr<const config::JobSpec>& shared_spec() const { return spec_; }
  const std::string& name() const { return spec_->name; }
  State state() const { return state_; }
  bool wanted_up() const { return wanted_up_; }
  pid_t pid() const { return pid_; }
  double since() const { return since_.unix_seconds; }
  std::optional<milliseconds> uptime(const Instant& now) const;
  int restarts() const { return restarts_; }
  const std::optional<ExitStatus>& last_exit() const { return last_exit_; }
  const std::string& reason() const { return reason_; }
  int failed_starts() const { return failed_starts_; }
  bool has_timer() const { return timer_.has_value(); }
  // The log a person should read when this job fails (stderr's, else stdout's), or "".
  std::string failure_log() const;
  // True while the process is alive or being started: it needs a stop before removal.
  bool active() const;

 private:
  void spawn_now(const Instant& now, Effects& out);
  void failed_start(const Instant& now, Effects& out);
  void retry_later(int streak, const Instant& now, Effects& out);
  void send_stop(const Instant& now, Effects& out);
  void become(State to, const Instant& now, Effects& out, std::optional<ExitStatus> exit = {});
  void set_timer(milliseconds deadline, Effects& out);
  void clear_timer(Effects& out);

  std::shared_ptr<const config::JobSpec> spec_;

  // What the user asked for ("up": keep it running) — apart from what it does.
  bool wanted_up_ = false;
  // A stop in progress is to be followed by a fresh start (restart, or reload).
  bool start_after_stop_ = false;

  // What the process does.
  State state_ = State::stopped;
  pid_t pid_ = 0;
  pid_t last_pid_ = 0;     // the process that exited last
  bool spawning_ = false;  // a Spawn effect is out; spawned()/spawn_failed() will follow
  Instant since_;          // last state change
  Instant spawned_at_;     // when the current (or last) process started
  std::optional<milliseconds> timer_;  // the armed deadline, if any
  std::optional<ExitStatus> last_exit_;
  std::string reason_;

  int failed_starts_ = 0;  // failed starts in a row (decides fatal)
  int crash_streak_ = 0;   // quick exits in a row, failed starts included (decides backoff)
  int restarts_ = 0;       // automatic respawns over the job's life
};

}  // namespace vigil::core
