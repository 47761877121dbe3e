// One supervised job: its spec, what the user wants of it, and what its process is doing.
// Every rule of the job life cycle (start_seconds, backoff, start_retries, restart policy,
// stop escalation) lives in this class, so "what happens when a job exits" is answered in
// one function: Job::exited.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

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
  // What the daemon found of the job beyond its leader (docs/guarantees.md), each call
  // replacing what was known. `current`: processes of the running leader's run that a
  // signal to its process group does not reach (they left it: setsid, a double fork); a
  // stop signals them with the group. `leftovers`: processes of runs whose leader has
  // exited. With kill_group they die with their leader (SIGKILL, at once). Without, they
  // run on: the reason says so, the job is not started again while they run (that would
  // add another copy), and a stop or restart of the job stops them.
  void strays_found(std::vector<pid_t> current, std::vector<Stray> leftovers, const Instant& now,
                    Effects& out);

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
  // The process that exited last, and the number of the last spawn (Spawn::run).
  pid_t last_pid() const { return last_pid_; }
  std::uint64_t run() const { return run_; }
  double since() const { return since_.unix_seconds; }
  std::optional<milliseconds> uptime(const Instant& now) const;
  int restarts() const { return restarts_; }
  const std::optional<ExitStatus>& last_exit() const { return last_exit_; }
  // Why the job is in its state: how its last run ended, and what that run left behind.
  std::string reason() const;
  const std::vector<Stray>& leftovers() const { return leftovers_; }
  // Without kill_group, what its last run left keeps the job from starting again.
  bool held_by_leftovers() const;
  // The last start was refused (held_by_leftovers()), and why.
  bool start_refused() const;
  std::string refusal() const;
  // The last run failed, or what it left had to be killed: a start did not succeed.
  bool failed() const { return !reason_.empty() || !killed_.empty(); }
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
  // A restart the job makes on its own: held while leftovers run (held_by_leftovers).
  void auto_spawn(const Instant& now, Effects& out);
  void stop_leftovers(const Instant& now, Effects& out);
  void leftovers_gone(const Instant& now, Effects& out);
  void signal_strays(std::vector<pid_t> pids, int signo, Effects& out) const;
  std::vector<pid_t> leftover_pids() const;
  std::string leftover_note() const;
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
  std::uint64_t run_ = 0;  // the number of the last Spawn
  bool spawning_ = false;  // a Spawn effect is out; spawned()/spawn_failed() will follow
  Instant since_;          // last state change
  Instant spawned_at_;     // when the current (or last) process started
  std::optional<milliseconds> timer_;  // the armed deadline, if any
  std::optional<ExitStatus> last_exit_;
  std::string reason_;

  // Beyond the leader (strays_found), sorted by pid.
  std::vector<pid_t> strays_;     // of the running leader's run, outside its group
  std::vector<Stray> leftovers_;  // of runs whose leader has exited
  std::vector<pid_t> killed_;     // leftovers outside the group killed since the last spawn
  bool held_ = false;             // an automatic restart waits for the leftovers to go
  bool refused_ = false;          // the last start was refused: leftovers run

  int failed_starts_ = 0;  // failed starts in a row (decides fatal)
  int crash_streak_ = 0;   // quick exits in a row, failed starts included (decides backoff)
  int restarts_ = 0;       // automatic respawns over the job's life
};

}  // namespace vigil::core
