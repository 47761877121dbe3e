// Where a job's stdout and stderr go. Today: log files the job writes to directly (opened
// by vigild for append, mode 0640, folders created 0750), /dev/null for "null", one shared
// file for "stderr: stdout". This module is the one place that decides it, so moving
// capture into vigild (pipes, rotation, live follow) changes only this file's inside.
#pragma once

#include <string>

#include "spec.h"

namespace vigil {

// The descriptors a new job process gets as its stdout and stderr. Owns them: the daemon
// keeps none once the child has them.
class JobStdio {
 public:
  JobStdio() = default;
  ~JobStdio();
  JobStdio(JobStdio&& other) noexcept;
  JobStdio& operator=(JobStdio&&) = delete;
  JobStdio(const JobStdio&) = delete;

  int out() const { return out_; }
  int err() const { return err_; }

  // Opens what `spec` asks for. Returns "" or the reason ("cannot open log ...").
  std::string open(const config::JobSpec& spec);

 private:
  int out_ = -1;
  int err_ = -1;
};

// The last `lines` lines of a log file (all of it when shorter), reading backwards from
// the end so a large log costs only what is returned. Returns "" or sets `error`.
std::string tail_lines(const std::string& path, std::size_t lines, std::string& error);

}  // namespace vigil
