// Log files: append, rotate at line boundaries, timestamp, reopen, survive failures.
#include "log_file.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <vector>

#include "file_reaper.h"
#include "fsutil.h"

namespace vigil {

namespace {

// How often a failing log is retried: often enough to resume soon after space is freed,
// seldom enough that a job flooding a full disk costs nothing.
constexpr long kRetryNanos = 1'000'000'000;

struct timespec real_clock() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

// Where the last '\n' in s is, or npos. memrchr: string_view::rfind looks at one byte at a
// time, which costs a job writing long lines more than the disk does.
std::size_t last_line_end(std::string_view s) {
  const void* nl = s.empty() ? nullptr : ::memrchr(s.data(), '\n', s.size());
  return nl == nullptr ? std::string_view::npos
                       : static_cast<std::size_t>(static_cast<const char*>(nl) - s.data());
}

long long nanos_between(const struct timespec& a, const struct timespec& b) {
  return (static_cast<long long>(b.tv_sec) - a.tv_sec) * 1'000'000'000LL + (b.tv_nsec - a.tv_nsec);
}

}  // namespace

std::string LineStamper::prefix(const struct timespec& ts) {
  struct tm tm {};
  ::gmtime_r(&ts.tv_sec, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                ts.tv_nsec / 1'000'000);
  return buf;
}

LogFile::LogFile(std::string path, LogPolicy policy, Clock clock)
    : path_(std::move(path)), policy_(policy), clock_(clock ? std::move(clock) : real_clock) {}

LogFile::~LogFile() { close_file(); }

void LogFile::close_file() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

namespace {

// Whether the file behind `fd` (opened for appending, so not readable) ends with a
// newline: its last byte is read through a read-only descriptor of the same file, which
// /proc/self/fd gives without a second lookup of the path (where a link could be planted).
bool ends_with_newline(int fd, off_t size) {
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  const int r = ::open(self.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (r < 0) return true;  // unknown: as if it did, as before
  char last = '\n';
  const bool read = ::pread(r, &last, 1, size - 1) == 1;
  ::close(r);
  return !read || last == '\n';
}

}  // namespace

bool LogFile::open_file() {
  std::string why;
  int fd = fs::open_append(path_, policy_.mode, &why);
  if (fd < 0) {
    error_ = std::move(why);
    return false;
  }
  fd = fs::keep_long_lived(fd);
  struct stat st {};
  ::fstat(fd, &st);
  fd_ = fd;
  size_ = static_cast<std::uint64_t>(st.st_size);
  // An existing file that does not end with a newline ends mid-line.
  at_line_start_ = true;
  line_len_ = 0;
  if (size_ > 0) at_line_start_ = ends_with_newline(fd, st.st_size);
  if (left_ && left_->dev == st.st_dev && left_->ino == st.st_ino && left_->size == size_) {
    at_line_start_ = left_->at_line_start;
    line_len_ = left_->line_len;
  }
  left_.reset();
  return true;
}

void LogFile::close_for_now() {
  if (fd_ < 0) return;
  struct stat st {};
  if (::fstat(fd_, &st) == 0) left_ = Left{st.st_dev, st.st_ino, size_, at_line_start_, line_len_};
  close_file();
}

std::string LogFile::reopen() {
  close_file();
  if (!open_file()) return error_;
  return {};
}

void LogFile::rotate() {
  close_file();
  if (policy_.backups > 0) {
    const std::string base = path_ + ".";
    const std::string oldest = base + std::to_string(policy_.backups);
    if (reaper_ != nullptr) {
      reaper_->remove(oldest);
    } else {
      ::unlink(oldest.c_str());
    }
    for (int i = policy_.backups - 1; i >= 1; --i) {
      ::rename((base + std::to_string(i)).c_str(), (base + std::to_string(i + 1)).c_str());
    }
    ::rename(path_.c_str(), (base + "1").c_str());
  } else {
    // No backups kept: start the file over.
    ::truncate(path_.c_str(), 0);
  }
  open_file();
}

void LogFile::fail(int err, std::size_t bytes) {
  error_ = "cannot write " + path_ + ": " + fs::errno_text(err);
  dropped_ += bytes;
  last_attempt_ = clock_();
}

bool LogFile::write_all(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      fail(errno, data.size());
      return false;
    }
    // Where the file ends is what reached it, even when the rest of the write does not
    // follow (a disk that fills in the middle of a line): the note about the loss must
    // know whether it has to start a new line.
    const std::string_view done = data.substr(0, static_cast<std::size_t>(n));
    const std::size_t nl = last_line_end(done);
    line_len_ = nl == std::string_view::npos ? line_len_ + done.size() : done.size() - nl - 1;
    at_line_start_ = done.back() == '\n';
    size_ += done.size();
    data.remove_prefix(done.size());
  }
  return true;
}

bool LogFile::append(std::string_view data) {
  const std::uint64_t max = policy_.max_size;
  // Writes the first n bytes of data (write_all keeps the line bookkeeping).
  auto put = [&](std::size_t n) {
    if (!write_all(data.substr(0, n))) return false;
    data.remove_prefix(n);
    return true;
  };
  auto next_file = [&] {
    rotate();
    if (fd_ < 0) fail(errno, data.size());
    return fd_ >= 0;
  };
  while (!data.empty()) {
    if (max == 0 || size_ + data.size() <= max) return put(data.size());
    // It does not all fit: cut at the last line end that fits.
    const std::size_t room = size_ < max ? static_cast<std::size_t>(max - size_) : 0;
    const std::size_t cut = last_line_end(data.substr(0, room));
    if (cut != std::string_view::npos) {
      if (!put(cut + 1) || !next_file()) return false;
      continue;
    }
    if (at_line_start_ && size_ > 0) {
      if (!next_file()) return false;  // the next line starts a new file
      continue;
    }
    // In the middle of a line. One that fits in a file is finished here (the file passes
    // the bound by less than a line); a longer one is cut at the bound, so a job writing
    // without newlines still rotates.
    const std::size_t nl = data.find('\n');
    const std::size_t rest = nl == std::string_view::npos ? data.size() : nl + 1;
    if (line_len_ + rest <= max) {
      if (!put(rest)) return false;
      if (nl != std::string_view::npos && !next_file()) return false;
      continue;
    }
    std::size_t take = room;
    if (take < data.size() && data[take] == '\n') ++take;  // keep a line's end with it
    if (take > 0 && !put(take)) return false;
    if (!next_file()) return false;
  }
  return true;
}

bool LogFile::write(std::string_view data) {
  if (data.empty()) return true;
  if (!error_.empty()) {
    // Failing: retry at a modest pace, dropping what comes in between.
    const struct timespec now = clock_();
    if (nanos_between(last_attempt_, now) < kRetryNanos) {
      dropped_ += data.size();
      return false;
    }
    last_attempt_ = now;
  }
  if (fd_ < 0 && !open_file()) {
    dropped_ += data.size();
    last_attempt_ = clock_();
    return false;
  }
  if (dropped_ > 0) {
    // Writing works again: say what was lost, on a line of its own.
    std::string note = at_line_start_ ? "" : "\n";
    note += "[vigil: " + std::to_string(dropped_) + " bytes dropped: " + error_ + "]\n";
    const std::uint64_t lost = dropped_;
    error_.clear();
    dropped_ = 0;
    if (!append(note)) {
      // Still failing: the note was never output, so what is lost is what was lost
      // before and all of this write.
      dropped_ = lost + data.size();
      return false;
    }
  }
  error_.clear();
  return append(data);
}

namespace {

// The last `lines` lines of one file, at most `max_bytes` of them. `found` is how many
// lines that is (a last line without its newline counts); `absent` says whether the file
// was found missing.
std::string tail_one(const std::string& path, std::size_t lines, std::size_t max_bytes,
                     std::size_t& found, bool& absent, LogTail& out) {
  found = 0;
  absent = false;
  if (lines == 0 || max_bytes == 0) return {};
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    // A job that has not written yet has no log yet: that is an empty log, not an error.
    if (errno == ENOENT) {
      absent = true;
    } else {
      out.error = "cannot read " + path + ": " + fs::errno_text(errno);
    }
    return {};
  }
  struct stat st {};
  ::fstat(fd, &st);
  // Blocks from the end backwards, until they hold more line ends than lines wanted (the
  // line before the first one wanted ends there), or more bytes than may be returned.
  constexpr std::size_t kBlock = 64 * 1024;
  std::vector<std::string> blocks;
  std::size_t total = 0, line_ends = 0;
  bool whole_file = true;
  for (off_t end = st.st_size; end > 0;) {
    const off_t start = std::max<off_t>(0, end - static_cast<off_t>(kBlock));
    std::string block(static_cast<std::size_t>(end - start), '\0');
    const ssize_t n = ::pread(fd, block.data(), block.size(), start);
    if (n <= 0) break;
    block.resize(static_cast<std::size_t>(n));
    line_ends += static_cast<std::size_t>(std::count(block.begin(), block.end(), '\n'));
    total += block.size();
    blocks.push_back(std::move(block));
    end = start;
    if (end > 0 && (line_ends > lines || total > max_bytes)) {
      whole_file = false;
      break;
    }
  }
  ::close(fd);
  std::string data;
  data.reserve(total);
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) data += *it;
  if (data.empty()) return {};

  // Back from the end over `lines` line ends (the last line's own end not counted).
  std::size_t pos = data.size() - (data.back() == '\n' ? 1 : 0);
  while (found < lines) {
    const void* nl = pos == 0 ? nullptr : ::memrchr(data.data(), '\n', pos);
    if (nl == nullptr) {
      // The start of what was read: a line start only when it is the start of the file.
      if (whole_file) ++found, pos = 0;
      else pos = std::string::npos;
      break;
    }
    const std::size_t at = static_cast<std::size_t>(static_cast<const char*>(nl) - data.data());
    if (++found == lines) {
      pos = at + 1;
      break;
    }
    pos = at;
  }
  if (pos == std::string::npos || data.size() - pos > max_bytes) {
    // More than fits: the last max_bytes, from the first line that starts in them.
    out.truncated = true;
    pos = data.size() - std::min(max_bytes, data.size());
    if (pos > 0 && data[pos - 1] != '\n') {
      const std::size_t nl = data.find('\n', pos);
      if (nl != std::string::npos && nl + 1 < data.size()) pos = nl + 1;
    }
  }
  return data.substr(pos);
}

}  // namespace

LogTail tail_lines(const std::string& path, std::size_t lines, std::size_t max_bytes) {
  LogTail out;
  std::size_t found = 0;
  bool absent = false;
  out.text = tail_one(path, lines, max_bytes, found, absent, out);
  out.missing = absent;
  if (found < lines && !out.truncated && out.error.empty()) {
    // Short: the rest comes from the file rotated last.
    std::size_t older = 0;
    bool older_absent = false;
    std::string before =
        tail_one(path + ".1", lines - found, max_bytes - out.text.size(), older, older_absent, out);
    out.missing = absent && older_absent;
    if (!before.empty() && before.back() != '\n') before += '\n';
    out.text.insert(0, before);
  }
  return out;
}

void LineStamper::apply(std::string_view in, std::string_view prefix, std::string& out) {
  std::size_t start = 0;
  while (start < in.size()) {
    if (at_line_start_) out += prefix;
    std::size_t nl = in.find('\n', start);
    std::size_t end = nl == std::string_view::npos ? in.size() : nl + 1;
    out.append(in.substr(start, end - start));
    at_line_start_ = nl != std::string_view::npos;
    start = end;
  }
}

}  // namespace vigil
