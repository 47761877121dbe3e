// One log file that vigil writes: appended to, rotated by size at line boundaries
// (name.1 newest .. name.N oldest), reopened on
// request (logrotate's move-then-signal), and never fatal: a write that fails (disk full,
// file unwritable) counts the dropped bytes and says so in the log once writing works
// again. No libuv and no threads here; callers decide where it runs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace vigil {

struct LogPolicy {
  std::uint64_t max_size = 0;  // rotate when the next write would pass it; 0 = never
  int backups = 0;             // rotated files kept (name.1 .. name.N)
  mode_t mode = 0640;
};

class FileReaper;

class LogFile {
 public:
  // The wall clock, replaceable for tests.
  using Clock = std::function<struct timespec()>;

  LogFile(std::string path, LogPolicy policy, Clock clock = {});
  ~LogFile();
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  // Appends output. Returns false if (some of) it was dropped because the file could not
  // be written; the reason is in error().
  bool write(std::string_view data);
  // Closes and reopens by path (after the file was moved away). Returns "" or the reason.
  std::string reopen();
  // Closes the file until the next write, which opens it again by path, the same way as
  // at first (to keep the number of open log files within a bound).
  void close_for_now();
  bool is_open() const { return fd_ >= 0; }

  const std::string& path() const { return path_; }
  const LogPolicy& policy() const { return policy_; }
  void set_policy(const LogPolicy& p) { policy_ = p; }
  // Backups that rotation drops are deleted through `reaper` (which frees their storage
  // on a thread of its own) instead of by this caller. Null: deleted here.
  void set_reaper(FileReaper* reaper) { reaper_ = reaper; }
  // Why the last write failed, or "" once writing works again.
  const std::string& error() const { return error_; }
  // Bytes dropped since writing last worked.
  std::uint64_t dropped() const { return dropped_; }
  std::uint64_t size() const { return size_; }

 private:
  bool open_file();
  void close_file();
  void rotate();
  // Writes bytes as they are, rotating at line boundaries as the policy says.
  bool append(std::string_view data);
  bool write_all(std::string_view data);
  void fail(int err, std::size_t bytes);

  std::string path_;
  LogPolicy policy_;
  Clock clock_;
  FileReaper* reaper_ = nullptr;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  bool at_line_start_ = true;  // the file ends at a line boundary
  std::size_t line_len_ = 0;   // bytes of the current (unfinished) line in this file
  std::string error_;
  std::uint64_t dropped_ = 0;
  struct timespec last_attempt_ {};  // of opening a file that could not be opened
  // The file close_for_now() left, and where its last line stood: it goes on with that
  // line when it is opened again unchanged.
  struct Left {
    dev_t dev = 0;
    ino_t ino = 0;
    std::uint64_t size = 0;
    bool at_line_start = true;
    std::size_t line_len = 0;
  };
  std::optional<Left> left_;
};

// The end of a log as `logs` shows it: the last lines, read backwards from the end of the
// file and on into the file rotated last (path.1) when the current one is shorter.
struct LogTail {
  std::string text;
  bool truncated = false;  // more lines were asked for than fit in the byte bound
  std::string error;       // "" unless a file could not be read (a missing one is empty)
  bool missing = false;    // neither the log nor its last rotation exists (yet)
};
// At most `max_bytes` of text, starting at a line boundary unless a single line is longer
// than that. The cost is linear in what is returned, however many lines are asked for.
LogTail tail_lines(const std::string& path, std::size_t lines, std::size_t max_bytes);

// Puts an RFC 3339 time with milliseconds at the start of every line of a stream that
// arrives in arbitrary pieces: a line split across pieces gets one stamp, at its start.
class LineStamper {
 public:
  // Appends `in`, stamped with `prefix` where lines start, to `out`.
  void apply(std::string_view in, std::string_view prefix, std::string& out);
  // The prefix for a moment, e.g. "2026-11-22T10:00:00.123Z ".
  static std::string prefix(const struct timespec& ts);

 private:
  bool at_line_start_ = true;
};

}  // namespace vigil
