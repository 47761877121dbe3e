// The job table and everything that spans jobs: routing of exits and timers to their job,
// name and glob selection, reload (the diff between two configs), shutdown, and waiters
// (requests that answer when their jobs reach an outcome). Pure: no syscalls, no libuv.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "effects.h"
#include "job.h"
#include "spec.h"

namespace vigil::core {

// What a reload changed, by job name, each in definition order.
struct ReloadReport {
  std::vector<std::string> added;
  std::vector<std::string> changed;
  std::vector<std::string> removed;
  std::vector<std::string> unchanged;
};

// A name that matched nothing, with the closest existing name if there is one.
struct SelectError {
  std::string message;  // "no job named 'wbe' (did you mean 'web'?)"
  // Set when the name matched, but more jobs than the request takes (select_one): the
  // request is wrong, not the job table.
  bool several = false;
};

enum class Goal { up, down };

class Supervisor {
 public:
  // Installs the jobs of the first config and starts those with autostart.
  void load(const std::vector<config::JobSpec>& jobs, const Instant& now, Effects& out);
  // Applies a new set of job definitions: added jobs start (if autostart), removed jobs
  // stop and leave the table, changed jobs restart with their new definition, and
  // unchanged jobs are not touched (they keep their processes).
  ReloadReport reload(const std::vector<config::JobSpec>& jobs, const Instant& now,
                      Effects& out);

  // Names, globs (fnmatch) and "all" (when allowed) -> jobs in definition order, no
  // duplicates. Every name or glob must match at least one job.
  std::variant<std::vector<Job*>, SelectError> select(const std::vector<std::string>& names,
                                                      bool allow_all) const;
  // One job, for a request that takes one (`logs`): a name, or a glob that matches
  // exactly one job. A glob that matches several is an error naming them, never the
  // first of them.
  std::variant<Job*, SelectError> select_one(const std::string& name) const;

  // --- Requests, for the selected jobs. ---
  void start(const std::vector<Job*>& jobs, const Instant& now, Effects& out);
  void stop(const std::vector<Job*>& jobs, const Instant& now, Effects& out);
  void restart(const std::vector<Job*>& jobs, const Instant& now, Effects& out);

  // Registers a waiter: a Reply effect comes out once every job has reached `goal` or
  // failed to. Call after the request itself; may reply at once. Returns its id.
  std::uint64_t wait_for(const std::vector<Job*>& jobs, Goal goal, Effects& out);
  // The requester went away: no Reply for this waiter.
  void cancel_wait(std::uint64_t waiter) { waiters_.erase(waiter); }
  // The outcome of one job for a goal right now, or nothing while it is still moving.
  std::optional<Outcome> outcome(const Job& job, Goal goal) const;

  // Stops every job (all at once) and refuses further starts.
  void shutdown(const Instant& now, Effects& out);
  bool shutting_down() const { return shutting_down_; }
  // True when no job has a process (or one on its way), nor left one behind.
  bool quiescent() const;

  // --- Events from the world. Each returns false when nothing here knew the name or pid. ---
  bool child_exited(pid_t pid, ExitStatus status, const Instant& now, Effects& out);
  bool spawned(const std::string& job, pid_t pid, const Instant& now, Effects& out);
  bool spawn_failed(const std::string& job, const std::string& reason, const Instant& now,
                    Effects& out);
  bool timer_fired(const std::string& job, const Instant& now, Effects& out);
  // See Job::strays_found. While shutting down, what a job left is stopped too.
  bool strays_found(const std::string& job, std::vector<pid_t> current,
                    std::vector<Stray> leftovers, const Instant& now, Effects& out);

  // The job whose leader `pid` is, or null.
  const Job* leader_of(pid_t pid) const;

  Job* find(const std::string& name) const;
  const std::vector<std::unique_ptr<Job>>& jobs() const { return jobs_; }

 private:
  struct Waiter {
    Goal goal;
    std::vector<std::string> pending;  // job names still without an outcome
    std::vector<Outcome> outcomes;     // filled as they settle
    std::vector<std::string> order;    // the jobs as asked for
  };

  Job& add(config::JobSpec spec, const Instant& now);
  // Called after every change: finishes removals and answers settled waiters.
  void settle(Effects& out);

  std::vector<std::unique_ptr<Job>> jobs_;  // definition order = start order
  std::map<std::string, Job*> by_name_;
  std::map<pid_t, Job*> by_pid_;
  std::set<std::string> removing_;  // removed by reload, waiting to stop
  // Changed by reload while running: the definition to take once stopped.
  std::map<std::string, config::JobSpec> redefine_;
  std::map<std::uint64_t, Waiter> waiters_;
  std::uint64_t next_waiter_ = 1;
  bool shutting_down_ = false;
};

}  // namespace vigil::core
