// Filesystem helpers for files that vigild creates.
#include "fsutil.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>

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

namespace {

// Where make_dirs failed: the folder that is in the way or could not be made, and why.
struct DirFailure {
  std::string dir;
  std::string why;  // the error of mkdir; empty when `dir` is there but is not a folder
};

std::optional<DirFailure> make_dirs_at(const std::string& dir, mode_t mode) {
  if (dir.empty() || dir == "/" || dir == ".") return std::nullopt;
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return std::nullopt;
    return DirFailure{dir, ""};
  }
  if (auto failure = make_dirs_at(dirname(dir), mode)) return failure;
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) return DirFailure{dir, errno_text(errno)};
  return std::nullopt;
}

}  // namespace

std::string make_dirs(const std::string& dir, mode_t mode) {
  const std::optional<DirFailure> failure = make_dirs_at(dir, mode);
  if (!failure) return {};
  // "cannot create /x/y: /x is not a directory", "cannot create /x/y: Permission denied",
  // "cannot create /x/y: /x: Permission denied".
  std::string out = "cannot create " + dir + ": ";
  if (failure->why.empty()) return out + failure->dir + " is not a directory";
  if (failure->dir != dir) out += failure->dir + ": ";
  return out + failure->why;
}

bool is_symlink(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

int open_append(const std::string& path, mode_t mode, std::string* why) {
  constexpr int kFlags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW;
  int fd = ::open(path.c_str(), kFlags, mode);
  // ENOTDIR: a file where a folder should be, which make_dirs names.
  if (fd < 0 && (errno == ENOENT || errno == ENOTDIR)) {
    if (auto err = make_dirs(dirname(path), 0750); !err.empty()) {
      if (why) *why = err;
      return -ENOENT;
    }
    fd = ::open(path.c_str(), kFlags, mode);
  }
  if (fd >= 0) return fd;
  const int err = errno;
  if (why) {
    if (err == ELOOP && is_symlink(path)) {
      *why = path +
             " is a symbolic link; vigild does not follow links for logs (a planted link could "
             "make it write elsewhere)";
    } else {
      *why = "cannot open " + path + ": " + errno_text(err);
    }
  }
  return -err;
}

}  // namespace vigil::fs
