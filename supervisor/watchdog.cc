// The orphan guard process and vigild's side of its pipe.
#include "watchdog.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fsutil.h"

namespace vigil {

namespace {
constexpr int kGuardFd = 3;
constexpr int kGoodbye = 0;
}  // namespace

Watchdog::~Watchdog() {
  if (fd_ >= 0) ::close(fd_);
}

std::string Watchdog::start() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) return "cannot create a pipe: " + fs::errno_text(errno);
  const pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(p[0]);
    ::close(p[1]);
    return "cannot fork: " + fs::errno_text(err);
  }
  if (pid == 0) {
    // Its own session: a signal to vigild's process group does not reach the guard.
    ::setsid();
    ::dup2(p[0], kGuardFd);
    ::syscall(SYS_close_range, kGuardFd + 1, ~0U, 0);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    char arg0[] = "vigild";
    char arg1[] = "--internal-watchdog";
    char* argv[] = {arg0, arg1, nullptr};
    char* envp[] = {nullptr};
    ::execve("/proc/self/exe", argv, envp);
    ::_exit(127);
  }
  ::close(p[0]);
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

int Watchdog::run_guard() {
  ::prctl(PR_SET_NAME, "vigild-guard");
  // Only vigild's death (EOF) or SIGKILL ends the guard.
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2}) {
    ::signal(sig, SIG_IGN);
  }
  std::set<pid_t> groups;
  int value = 0;
  std::size_t have = 0;
  for (;;) {
    ssize_t n = ::read(kGuardFd, reinterpret_cast<char*>(&value) + have, sizeof value - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: vigild is gone without a goodbye
    have += static_cast<std::size_t>(n);
    if (have < sizeof value) continue;
    have = 0;
    if (value == kGoodbye) return 0;
    if (value > 0) {
      groups.insert(value);
    } else {
      groups.erase(-value);
    }
  }
  for (pid_t g : groups) ::kill(-g, SIGKILL);
  return 0;
}

}  // namespace vigil
