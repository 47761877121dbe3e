// The descriptor budget: what a config's jobs need against RLIMIT_NOFILE, what vigild
// says when they do not fit, and how many log files it keeps open.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "fd_budget.h"

using vigil::fd_budget;
using vigil::FdBudget;
using Kind = vigil::config::Output::Kind;

namespace {

std::vector<vigil::config::JobSpec> jobs(std::size_t n, Kind out, Kind err) {
  std::vector<vigil::config::JobSpec> v(n);
  for (auto& j : v) {
    j.stdout_log.kind = out;
    j.stderr_log.kind = err;
  }
  return v;
}

}  // namespace

TEST_CASE("fd budget: a pipe per logged stream, none for stderr merged or discarded") {
  const FdBudget split = fd_budget(jobs(10, Kind::file, Kind::file));
  CHECK(split.jobs == 10);
  CHECK(split.pipes == 20);
  CHECK(split.logs == 20);
  CHECK(split.split_stderr == 10);
  const FdBudget merged = fd_budget(jobs(10, Kind::file, Kind::merge));
  CHECK(merged.pipes == 10);
  CHECK(merged.logs == 10);
  CHECK(merged.split_stderr == 0);
  CHECK(fd_budget(jobs(10, Kind::discard, Kind::merge)).pipes == 0);
  CHECK(fd_budget(jobs(10, Kind::discard, Kind::file)).pipes == 10);
}

TEST_CASE("fd budget: 10000 jobs against a limit of 20000") {
  // Stdout and stderr apart: two pipes a job do not fit, and the warning says by how much.
  const FdBudget split = fd_budget(jobs(10000, Kind::file, Kind::file));
  CHECK(split.need() == 20000 + 32 + 64 + 64 * 4 + 64);
  CHECK(split.shortfall(20000) ==
        "10000 jobs need about 20416 descriptors; the limit is 20000: raise LimitNOFILE "
        "(ulimit -Hn) or merge stderr (stderr: stdout) in the 10000 jobs that log it apart");
  CHECK(split.shortfall(20416) == "");
  // Merged: one pipe a job fits, and what is left goes to open log files.
  const FdBudget merged = fd_budget(jobs(10000, Kind::file, Kind::merge));
  CHECK(merged.shortfall(20000) == "");
  CHECK(merged.open_logs(20000) == 20000 - 10000 - 352);
  CHECK(merged.long_lived(20000) == 10000 + 20000 - 10000 - 352);
  // Too many even merged: no advice to merge what is merged already.
  CHECK(merged.shortfall(4096) ==
        "10000 jobs need about 10416 descriptors; the limit is 4096: raise LimitNOFILE "
        "(ulimit -Hn)");
  CHECK(merged.open_logs(4096) == FdBudget::kMinOpenLogs);
}

TEST_CASE("fd budget: a few jobs keep every log open; one job is one job") {
  const FdBudget few = fd_budget(jobs(3, Kind::file, Kind::file));
  CHECK(few.need() == 6 + 32 + 64 + 3 * 4 + 6);
  CHECK(few.open_logs(1024) >= few.logs);
  CHECK(few.long_lived(1024) == 12);
  CHECK(fd_budget(jobs(1, Kind::file, Kind::file)).shortfall(64) ==
        "1 job needs about 104 descriptors; the limit is 64: raise LimitNOFILE (ulimit -Hn) "
        "or merge stderr (stderr: stdout) in the 1 job that logs it apart");
}
