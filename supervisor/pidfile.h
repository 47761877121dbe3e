// The pidfile: written atomically (a temporary file renamed into place) and held with an
// exclusive flock for the daemon's whole life, so a second instance is refused and the
// pidfile of a dead daemon (no lock) is taken over.
#pragma once

#include <sys/types.h>

#include <string>

namespace vigil {

class Pidfile {
 public:
  Pidfile() = default;
  ~Pidfile();
  Pidfile(const Pidfile&) = delete;
  Pidfile& operator=(const Pidfile&) = delete;

  // Takes the pidfile for `pid`. Returns "" or the reason: "already running, pid N" when
  // another live daemon holds it.
  std::string acquire(const std::string& path, pid_t pid);
  // Removes the file and lets go of the lock.
  void release();

  // The pid recorded in a pidfile whose lock is held, or 0.
  static pid_t holder(const std::string& path);

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace vigil
