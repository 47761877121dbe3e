// The daemon's own log.
#include "logger.h"

#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "fsutil.h"
#include "log_writer.h"
#include "spec.h"

namespace vigil {

std::string rfc3339_now() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  std::string s = LineStamper::prefix(ts);
  s.pop_back();  // the prefix ends with the space that separates it from the line
  return s;
}

namespace {
constexpr LogPolicy kDaemonLogPolicy{config::kDaemonLogMaxSize, config::kDaemonLogBackups, 0640};
// Daemon log bytes on their way to the disk at most: far more than a burst of lines.
constexpr std::size_t kMaxInFlight = 1024 * 1024;
}  // namespace

Logger::~Logger() = default;

void Logger::use_stderr() {
  file_.reset();
  path_.clear();
}

std::string Logger::use_file(const std::string& path) {
  auto file = std::make_unique<LogFile>(path, kDaemonLogPolicy);
  if (auto err = file->reopen(); !err.empty()) return err;
  file_ = std::move(file);
  path_ = path;
  return {};
}

std::string Logger::reopen() {
  if (!file_) return {};
  return file_->reopen();
}

void Logger::attach(LogWriter& writer) {
  if (!file_ || writer_ != nullptr) return;  // stderr is written directly
  file_.reset();
  writer_ = &writer;
  stream_ = writer.open(path_, kDaemonLogPolicy,
                        [this](LogWriter::StreamId, std::size_t n) {
                          in_flight_ -= std::min(in_flight_, n);
                        });
}

void Logger::detach() {
  if (writer_ == nullptr) return;
  writer_->close(stream_);
  writer_->flush();  // the thread is done with the file before it is opened here again
  writer_ = nullptr;
  in_flight_ = 0;
  file_ = std::make_unique<LogFile>(path_, kDaemonLogPolicy);
  file_->reopen();
  if (dropped_ > 0) {
    file_->write("[vigil: " + std::to_string(dropped_) +
                 " bytes of this log dropped: the disk did not keep up]\n");
    dropped_ = 0;
  }
}

void Logger::log(Level level, std::string_view message) {
  static constexpr std::string_view names[] = {"debug", "info", "warn", "error"};
  std::string line = rfc3339_now();
  line += ' ';
  line += names[static_cast<int>(level)];
  line += ": ";
  line += message;
  line += '\n';
  if (writer_ != nullptr) {
    if (in_flight_ + line.size() > kMaxInFlight) {
      dropped_ += line.size();
      return;
    }
    if (dropped_ > 0) {
      line.insert(0, "[vigil: " + std::to_string(dropped_) +
                         " bytes of this log dropped: the disk did not keep up]\n");
      dropped_ = 0;
    }
    Chunk chunk{std::make_unique_for_overwrite<char[]>(line.size()), line.size(), line.size()};
    std::memcpy(chunk.data.get(), line.data(), line.size());
    in_flight_ += line.size();
    writer_->write(stream_, std::move(chunk));
    return;
  }
  if (file_) {
    file_->write(line);  // a failure is counted and reported in the file once it works
    return;
  }
  // One write per line, so lines from a crash or a concurrent writer never interleave.
  ssize_t n = ::write(2, line.data(), line.size());
  (void)n;  // stderr that cannot be written has nowhere to report that
}

}  // namespace vigil
