// The check that a non-root user's runtime directory is that user's own (runtime_dir.h).
#include "runtime_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "users.h"

namespace vigil::config {
namespace {

std::string who(uid_t uid) {
  std::string out = "uid " + std::to_string(uid);
  if (const std::optional<std::string> name = user_name(uid)) out += " (" + *name + ")";
  return out;
}

std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// Whether `path` lies inside `dir`.
bool inside(std::string_view path, const std::string& dir) {
  return path.size() > dir.size() && path.starts_with(dir) && path[dir.size()] == '/';
}

}  // namespace

std::string check_private_dir(const std::string& dir, uid_t uid, std::optional<mode_t> create) {
  // mkdir() never follows a symbolic link at the last component: whatever is there
  // already (a link included) makes it fail with EEXIST, and is then looked at below.
  bool created = false;
  if (create) {
    if (::mkdir(dir.c_str(), *create) == 0) {
      created = true;
    } else if (errno != EEXIST) {
      return "cannot create " + dir + ": " + std::strerror(errno);
    }
  }
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT && !create) return {};
    struct stat st {};
    if ((err == ELOOP || err == ENOTDIR) && ::lstat(dir.c_str(), &st) == 0) {
      return dir + " is " +
             (S_ISLNK(st.st_mode) ? std::string("a symbolic link") : "not a directory") +
             " (owned by " + who(st.st_uid) +
             "), where a folder of your own belongs: it may have been put there to take "
             "over the socket; remove it, or set XDG_RUNTIME_DIR to a directory of your own";
    }
    return "cannot open " + dir + ": " + std::strerror(err);
  }
  // The mode asked for exactly, whatever the umask took away.
  if (created) (void)::fchmod(fd, *create);
  struct stat st {};
  const int rc = ::fstat(fd, &st);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return "cannot check " + dir + ": " + std::strerror(err);
  if (st.st_uid != uid) {
    return dir + " is owned by " + who(st.st_uid) + ", not by you (" + who(uid) +
           "): another user may have made it to take over the socket; remove it (as its "
           "owner or root), or set XDG_RUNTIME_DIR to a directory of your own";
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return dir + " may be written by other users (mode " + octal(st.st_mode) +
           "), who could replace the socket in it: run chmod go-w " + dir + ", or remove it";
  }
  return {};
}

std::string prepare_runtime_dir(const SupervisorSpec& spec, const Environment& env) {
  const std::optional<std::string> dir = runtime_dir(env);
  if (!dir) return {};
  const bool socket_inside = inside(spec.socket, *dir);
  if (!socket_inside && !inside(spec.pidfile, *dir) && !inside(spec.log, *dir) &&
      !inside(spec.log_dir, *dir)) {
    return {};
  }
  // Members of socket_group must be able to reach the socket: they may pass through the
  // folder, but neither list nor write it.
  const mode_t mode = socket_inside && spec.socket_group ? 0711 : 0700;
  return check_private_dir(*dir, env.uid, mode);
}

std::string check_runtime_socket(const std::string& socket, const Environment& env) {
  const std::optional<std::string> dir = runtime_dir(env);
  if (!dir || !inside(socket, *dir)) return {};
  return check_private_dir(*dir, env.uid);
}

}  // namespace vigil::config
