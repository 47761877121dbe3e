// vigild's descriptor budget: the jobs' pipes and log files against RLIMIT_NOFILE.
#include "fd_budget.h"

#include <algorithm>

namespace vigil {

namespace {

bool logged(const config::Output& o) {
  return o.kind == config::Output::Kind::file;
}

// The job's ends of its pipes and the two ends of its report pipe (spawner.cc).
constexpr std::size_t kPerSpawn = 4;

}  // namespace

std::size_t FdBudget::overhead() const {
  return kOwn + kClients + std::min(jobs, kMaxSpawnsInFlight) * kPerSpawn;
}

std::size_t FdBudget::need() const {
  return pipes + overhead() + std::min(logs, kMinOpenLogs);
}

std::size_t FdBudget::open_logs(rlim_t limit) const {
  const rlim_t taken = pipes + overhead();
  const rlim_t room = limit > taken ? limit - taken : 0;
  return static_cast<std::size_t>(std::max<rlim_t>(room, kMinOpenLogs));
}

std::size_t FdBudget::long_lived(rlim_t limit) const {
  return pipes + std::min(logs, open_logs(limit));
}

std::string FdBudget::shortfall(rlim_t limit) const {
  if (need() <= limit) return {};
  std::string s = std::to_string(jobs) + (jobs == 1 ? " job needs" : " jobs need") + " about " +
                  std::to_string(need()) + " descriptors; the limit is " + std::to_string(limit) +
                  ": raise LimitNOFILE (ulimit -Hn)";
  if (split_stderr > 0) {
    s += " or merge stderr (stderr: stdout) in the " + std::to_string(split_stderr) +
         (split_stderr == 1 ? " job that logs it apart" : " jobs that log it apart");
  }
  return s;
}

FdBudget fd_budget(const std::vector<config::JobSpec>& jobs) {
  FdBudget b;
  b.jobs = jobs.size();
  for (const auto& j : jobs) {
    // As JobOutput::prepare makes them: a pipe per logged stream, stderr on stdout's
    // when merged.
    const std::size_t streams = (logged(j.stdout_log) ? 1 : 0) + (logged(j.stderr_log) ? 1 : 0);
    b.pipes += streams;
    b.logs += streams;
    if (logged(j.stderr_log)) ++b.split_stderr;
  }
  return b;
}

rlim_t daemon_fd_limit() {
  struct rlimit nofile {};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0) return 1024;
  return nofile.rlim_max;
}

}  // namespace vigil
