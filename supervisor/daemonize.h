// Becoming a daemon the classic way, with a readiness handshake: the process the user
// started waits until the daemon says it is ready (config loaded, pidfile locked, socket
// bound) and exits 0 then, or prints the daemon's reason and exits non-zero.
#pragma once

#include <sys/types.h>

#include <string>

namespace vigil {

class Readiness {
 public:
  // Forks twice (setsid between), chdir /, sets `umask`, points stdin/stdout/stderr at
  // /dev/null. Returns in the daemon only; the starting process waits for ready() or
  // fail() and exits with the outcome. On a failure before the first fork, prints the
  // reason and exits 1.
  static Readiness daemonize(mode_t umask);
  // For the foreground: no fork; ready() notifies $NOTIFY_SOCKET when it is set.
  static Readiness foreground();

  // Tells the waiting process (or the service manager) that the daemon is ready.
  void ready();
  // Tells the waiting process why the daemon did not come up, and the exit code to use.
  void fail(const std::string& reason, int exit_code);

 private:
  int fd_ = -1;  // write end of the handshake pipe (daemonized), or -1
};

// Sends a datagram to $NOTIFY_SOCKET (systemd's sd_notify protocol), if set.
void notify_service_manager(const std::string& state);

}  // namespace vigil
