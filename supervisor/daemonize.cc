// Daemonizing with a readiness handshake over a pipe. Messages on the pipe: "R" when
// ready; "F", one byte of exit code, then the reason, when not.
#include "daemonize.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fsutil.h"

namespace vigil {

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "vigild: %s\n", what.c_str());
  std::exit(1);
}

void write_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

// The starting process: wait for the daemon's word and exit with it.
[[noreturn]] void wait_for_daemon(int fd, pid_t intermediate) {
  std::string msg;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    msg.append(buf, static_cast<std::size_t>(n));
  }
  ::waitpid(intermediate, nullptr, 0);
  if (!msg.empty() && msg[0] == 'R') std::exit(0);
  if (msg.size() >= 2 && msg[0] == 'F') {
    std::fprintf(stderr, "vigild: %s\n", msg.substr(2).c_str());
    std::exit(static_cast<unsigned char>(msg[1]));
  }
  std::fprintf(stderr, "vigild: the daemon exited before it was ready (see its log)\n");
  std::exit(1);
}

}  // namespace

Readiness Readiness::daemonize(mode_t umask) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) die("cannot create a pipe: " + fs::errno_text(errno));
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) die("cannot fork: " + fs::errno_text(errno));
  if (pid > 0) {
    ::close(p[1]);
    wait_for_daemon(p[0], pid);
  }

  // The intermediate child: a new session without a controlling terminal, then a second
  // fork so the daemon is not a session leader and can never acquire one again.
  ::close(p[0]);
  Readiness r;
  r.fd_ = p[1];
  if (::setsid() < 0) {
    r.fail("setsid failed: " + fs::errno_text(errno), 1);
    ::_exit(1);
  }
  pid = ::fork();
  if (pid < 0) {
    r.fail("cannot fork: " + fs::errno_text(errno), 1);
    ::_exit(1);
  }
  if (pid > 0) ::_exit(0);

  // The daemon.
  if (::chdir("/") < 0) {
    r.fail("cannot chdir to /: " + fs::errno_text(errno), 1);
    ::_exit(1);
  }
  ::umask(umask);
  int null = ::open("/dev/null", O_RDWR);
  if (null < 0) {
    r.fail("cannot open /dev/null: " + fs::errno_text(errno), 1);
    ::_exit(1);
  }
  ::dup2(null, 0);
  ::dup2(null, 1);
  ::dup2(null, 2);
  if (null > 2) ::close(null);
  return r;
}

Readiness Readiness::foreground() { return Readiness{}; }

void Readiness::ready() {
  if (fd_ >= 0) {
    write_all(fd_, "R");
    ::close(fd_);
    fd_ = -1;
    return;
  }
  notify_service_manager("READY=1\nSTATUS=running\nMAINPID=" + std::to_string(::getpid()));
}

void Readiness::fail(const std::string& reason, int exit_code) {
  if (fd_ >= 0) {
    std::string msg = "F";
    msg += static_cast<char>(exit_code);
    msg += reason;
    write_all(fd_, msg);
    ::close(fd_);
    fd_ = -1;
    return;
  }
  std::fprintf(stderr, "vigild: %s\n", reason.c_str());
}

void notify_service_manager(const std::string& state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return;
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::size_t len = std::strlen(path);
  if (len >= sizeof addr.sun_path) return;
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
           static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
  ::close(fd);
}

}  // namespace vigil
