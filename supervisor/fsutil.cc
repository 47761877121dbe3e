// Filesystem helpers for files that vigild creates.
#include "fsutil.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vigil::fs {

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
