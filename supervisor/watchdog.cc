// The orphan guard process and vigild's side of its pipe.
#include "watchdog.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fsutil.h"

namespace vigil {

namespace {
constexpr int kGuardFd = 3;  // as guard_main.cc reads it
constexpr int kGoodbye = 0;
constexpr const char* kProgram = "vigild-guard";
}  // namespace

Watchdog::~Watchdog() {
  if (fd_ >= 0) ::close(fd_);
}

// Where the guard program is: beside vigild (a build tree, or both installed in one
// folder), else where `meson install` puts it.
std::string Watchdog::program() {
  char self[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    std::string dir(self, static_cast<std::size_t>(n));
    dir.erase(dir.rfind('/') + 1);
    std::string beside = dir + kProgram;
    if (::access(beside.c_str(), X_OK) == 0) return beside;
  }
  return std::string(VIGIL_LIBEXECDIR "/") + kProgram;
}

std::string Watchdog::start() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) return "cannot create a pipe: " + fs::errno_text(errno);
  const std::string path = program();
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawnattr_init(&attr);
  // The read end as descriptor 3 (dup2 clears close-on-exec, even onto itself); every
  // other descriptor of vigild's is close-on-exec.
  ::posix_spawn_file_actions_adddup2(&fa, p[0], kGuardFd);
  // Its own session: a signal to vigild's process group does not reach the guard. No
  // signal blocked, none left to a handler of vigild's.
  sigset_t none, all;
  ::sigemptyset(&none);
  ::sigfillset(&all);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setsigdefault(&attr, &all);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
  // The mark to look for, as its argument (not in its environment, where the guard
  // would find it on itself).
  char arg0[] = "vigild-guard";
  std::string mark = daemon_id_;
  char* argv[] = {arg0, mark.empty() ? nullptr : mark.data(), nullptr};
  char* envp[] = {nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, path.c_str(), &fa, &attr, argv, envp);
  ::posix_spawn_file_actions_destroy(&fa);
  ::posix_spawnattr_destroy(&attr);
  ::close(p[0]);
  if (rc != 0) {
    ::close(p[1]);
    return "cannot run " + path + ": " + fs::errno_text(rc);
  }
  // Never block the daemon on a guard that does not read (stopped, say).
  ::fcntl(p[1], F_SETFL, O_NONBLOCK);
  if (fd_ >= 0) ::close(fd_);
  fd_ = p[1];
  pid_ = pid;
  return {};
}

std::string Watchdog::restart() {
  pid_ = 0;
  if (auto err = start(); !err.empty()) return err;
  for (pid_t g : groups_) send(g);
  return {};
}

void Watchdog::send(int value) {
  if (fd_ < 0) return;
  ssize_t n;
  do {
    n = ::write(fd_, &value, sizeof value);
  } while (n < 0 && errno == EINTR);
  // A full pipe or a dead guard: the guard is restarted on its exit with the whole list.
}

void Watchdog::watch(pid_t pgid) {
  groups_.insert(pgid);
  send(pgid);
}

void Watchdog::unwatch(pid_t pgid) {
  if (groups_.erase(pgid) != 0) send(-pgid);
}

void Watchdog::goodbye() {
  send(kGoodbye);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  pid_ = 0;
}

}  // namespace vigil
