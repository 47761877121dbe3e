// Job output destinations: log files opened for append.
#include "job_output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "fsutil.h"

namespace vigil {

namespace {

// Opens one destination. `path` empty means /dev/null.
int open_one(const config::Output& o, std::string& error) {
  if (o.kind == config::Output::Kind::discard) {
    int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd < 0) error = "cannot open /dev/null: " + fs::errno_text(errno);
    return fd;
  }
  int fd = fs::open_append(o.path, 0640);
  if (fd < 0) {
    error = "cannot open log " + o.path + ": " + fs::errno_text(-fd);
    return -1;
  }
  return fd;
}

}  // namespace

JobStdio::~JobStdio() {
  if (err_ >= 0 && err_ != out_) ::close(err_);
  if (out_ >= 0) ::close(out_);
}

JobStdio::JobStdio(JobStdio&& other) noexcept : out_(other.out_), err_(other.err_) {
  other.out_ = other.err_ = -1;
}

std::string JobStdio::open(const config::JobSpec& spec) {
  std::string error;
  out_ = open_one(spec.stdout_log, error);
  if (out_ < 0) return error;
  if (spec.stderr_log.kind == config::Output::Kind::merge) {
    err_ = out_;
    return {};
  }
  err_ = open_one(spec.stderr_log, error);
  return err_ < 0 ? error : std::string{};
}

std::string tail_lines(const std::string& path, std::size_t lines, std::string& error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    // A job that has not written yet has no log yet: that is an empty log, not an error.
    if (errno != ENOENT) error = "cannot read " + path + ": " + fs::errno_text(errno);
    return {};
  }
  struct stat st {};
  ::fstat(fd, &st);
  off_t end = st.st_size;
  std::string data;  // the tail read so far, in file order
  constexpr off_t kChunk = 64 * 1024;
  std::size_t newlines = 0;
  // A final line without '\n' counts as a line too.
  bool counted_last = false;
  while (end > 0) {
    off_t start = std::max<off_t>(0, end - kChunk);
    std::string chunk(static_cast<std::size_t>(end - start), '\0');
    ssize_t n = ::pread(fd, chunk.data(), chunk.size(), start);
    if (n <= 0) break;
    chunk.resize(static_cast<std::size_t>(n));
    data.insert(0, chunk);
    end = start;
    if (!counted_last && !data.empty()) {
      counted_last = true;
      if (data.back() != '\n') ++newlines;
    }
    newlines += static_cast<std::size_t>(std::count(chunk.begin(), chunk.end(), '\n'));
    if (newlines > lines) break;
  }
  ::close(fd);
  if (lines == 0) return {};
  // Keep the last `lines` lines: find the start after the (lines)-th newline from the end.
  std::size_t pos = data.size();
  if (!data.empty() && data.back() == '\n') --pos;
  for (std::size_t seen = 0; pos > 0; --pos) {
    if (data[pos - 1] == '\n' && ++seen == lines) break;
  }
  return data.substr(pos);
}

}  // namespace vigil
