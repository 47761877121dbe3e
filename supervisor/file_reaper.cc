// The idle-priority closer of deleted log files.
#include "file_reaper.h"

#include "fsutil.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

namespace vigil {

FileReaper::FileReaper() = default;

FileReaper::~FileReaper() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void FileReaper::remove(const std::string& path) {
  // Held apart from the low descriptors (fsutil.h): a new job's copy of the low table
  // would otherwise hold it too, and might be the one to free the file's pages.
  const int fd =
      fs::keep_long_lived(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  ::unlink(path.c_str());
  if (fd < 0) return;  // nothing there (or not ours to hold): unlinked all the same
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (fds_.size() < kMaxPending) {
      // Started on first use: a vigild whose logs never rotate has no such thread.
      if (!thread_.joinable()) thread_ = std::thread([this] { thread_main(); });
      fds_.push_back(fd);
      wake_.notify_one();
      return;
    }
  }
  ::close(fd);  // the reaper is behind: free this one here and now
}

std::size_t FileReaper::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fds_.size() + (closing_ ? 1 : 0);
}

void FileReaper::drain() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [&] { return fds_.empty() && !closing_; });
}

void FileReaper::thread_main() {
  // SCHED_IDLE: runs only when a CPU would otherwise be idle (any user may ask for it).
  // Where it is refused the thread still works, at normal priority.
  struct sched_param none {};
  ::sched_setscheduler(0, SCHED_IDLE, &none);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !fds_.empty(); });
    if (fds_.empty()) return;  // stopping, and nothing left
    const int fd = fds_.front();
    fds_.pop_front();
    closing_ = true;
    lock.unlock();
    ::close(fd);  // the last reference: the kernel frees the file's pages and blocks here
    lock.lock();
    closing_ = false;
    if (fds_.empty()) idle_.notify_all();
  }
}

}  // namespace vigil
