// Filesystem helpers for files that vigild creates.
#include "fsutil.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

namespace vigil::fs {

namespace {
// 0: no long-lived range. Set once at start-up; read by the loop and the log writer.
std::atomic<int> long_lived_base{0};
std::atomic<rlim_t> fd_limit{0};
}  // namespace

void set_long_lived_fd_base(rlim_t limit) {
  // Below the base: stdio, the loop's own descriptors, up to 1024 clients and the job
  // ends of the spawns in flight. Half the limit when it is too small for that.
  constexpr rlim_t kBase = 2048;
  long_lived_base = static_cast<int>(limit >= 2 * kBase ? kBase : limit / 2);
  fd_limit = limit;
}

void reserve_long_lived(std::size_t count) {
  const int base = long_lived_base.load();
  if (base <= 0 || count == 0) return;
  // A descriptor at the top of the range makes the kernel size the table for all of it
  // (tables only grow); it is closed at once.
  const rlim_t top = std::min<rlim_t>(static_cast<rlim_t>(base) + count, fd_limit.load() - 1);
  const int fd = ::fcntl(0, F_DUPFD_CLOEXEC, static_cast<int>(top));
  if (fd >= 0) ::close(fd);
}

int keep_long_lived(int fd) {
  const int base = long_lived_base.load(std::memory_order_relaxed);
  if (base <= 0 || fd >= base) return fd;
  const int high = ::fcntl(fd, F_DUPFD_CLOEXEC, base);
  if (high < 0) return fd;  // the range is full (or the limit is lower now): keep it low
  ::close(fd);
  return high;
}

std::string errno_text(int err) {
  char buf[256];
  // GNU strerror_r returns the message pointer (possibly not buf).
  return ::strerror_r(err, buf, sizeof buf);
}

std::string dirname(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string make_dirs(const std::string& dir, mode_t mode) {
  if (dir.empty() || dir == "/" || dir == ".") return {};
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    return S_ISDIR(st.st_mode) ? std::string{} : dir + ": not a directory";
  }
  if (auto err = make_dirs(dirname(dir), mode); !err.empty()) return err;
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) {
    return "cannot create " + dir + ": " + errno_text(errno);
  }
  return {};
}

int open_append(const std::string& path, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0 && errno == ENOENT) {
    if (!make_dirs(dirname(path), 0750).empty()) return -ENOENT;
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode);
  }
  return fd < 0 ? -errno : fd;
}

}  // namespace vigil::fs
