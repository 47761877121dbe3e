// Pidfile with a lock. The lock lives on the file at the path: whoever opens the path gets
// an inode that a live daemon holds locked, before and after our rename alike, so two
// daemons racing for one pidfile cannot both win.
#include "pidfile.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "fsutil.h"
#include "spec.h"

namespace vigil {

namespace {

pid_t read_pid(int fd) {
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  return static_cast<pid_t>(std::strtol(buf, nullptr, 10));
}

}  // namespace

Pidfile::~Pidfile() { release(); }

pid_t Pidfile::holder(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return 0;
  pid_t pid = 0;
  if (::flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK) pid = read_pid(fd);
  ::close(fd);
  return pid;
}

std::string Pidfile::acquire(const std::string& path, pid_t pid) {
  if (auto err = fs::make_dirs(fs::dirname(path), 0755); !err.empty()) {
    return "supervisor.pidfile: " + err;
  }

  // 1. Lock whatever is at the path now (creating it if there is nothing).
  int fd = -1;
  for (int attempt = 0; attempt < 10; ++attempt) {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 && errno == ELOOP && fs::is_symlink(path)) {
      return "supervisor.pidfile: " + path +
             " is a symbolic link; vigild does not follow links for its pidfile (a planted link "
             "could make it overwrite another file)";
    }
    if (fd < 0) return "cannot open pidfile " + path + ": " + fs::errno_text(errno);
    if (::flock(fd, LOCK_EX | LOCK_NB) < 0) {
      int err = errno;
      pid_t other = read_pid(fd);
      ::close(fd);
      if (err == EWOULDBLOCK) {
        return "already running, pid " + std::to_string(other) + " (pidfile " + path + ")";
      }
      return "cannot lock pidfile " + path + ": " + fs::errno_text(err);
    }
    // The file may have been replaced between open and flock: lock the current one.
    struct stat held {}, now {};
    if (::fstat(fd, &held) == 0 && ::stat(path.c_str(), &now) == 0 && held.st_ino == now.st_ino &&
        held.st_dev == now.st_dev) {
      break;
    }
    ::close(fd);
    fd = -1;
  }
  if (fd < 0) return "cannot lock pidfile " + path + ": it keeps changing";

  // 2. Write the new content beside it, lock that too, and rename it into place: readers
  // see the old file or the new one, never a half-written one.
  const std::string tmp = path + config::kPidfileTempSuffix;
  ::unlink(tmp.c_str());
  int nfd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (nfd < 0) {
    ::close(fd);
    return "cannot write pidfile " + tmp + ": " + fs::errno_text(errno);
  }
  std::string text = std::to_string(pid) + "\n";
  if (::flock(nfd, LOCK_EX | LOCK_NB) < 0 ||
      ::write(nfd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      ::fchmod(nfd, 0644) < 0 || ::rename(tmp.c_str(), path.c_str()) < 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    ::close(nfd);
    ::close(fd);
    return "cannot write pidfile " + path + ": " + fs::errno_text(err);
  }
  ::close(fd);  // the old inode is gone from the path; the new one is locked by nfd
  fd_ = nfd;
  path_ = path;
  return {};
}

void Pidfile::release() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());
  ::close(fd_);
  fd_ = -1;
}

}  // namespace vigil
