// Closes the last descriptor of deleted log files on a thread of idle priority. Deleting
// a rotated-out backup frees its page cache (25,600 pages for a 100 MiB log) in whichever
// thread drops the file's last reference; when that is the log writer, a job writing
// flat out waits for it at every rotation. Holding the file open across the unlink and
// closing it here moves that work to a moment when a CPU has nothing better to do.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace vigil {

class FileReaper {
 public:
  FileReaper();
  ~FileReaper();  // closes whatever is still queued, then stops the thread (if it started)
  FileReaper(const FileReaper&) = delete;
  FileReaper& operator=(const FileReaper&) = delete;

  // Deletes `path`. Its storage is given back when the reaper closes the descriptor it
  // keeps meanwhile; at most kMaxPending files wait, beyond that the caller frees it at
  // once, so a machine too busy to run the reaper does not pile up deleted files.
  void remove(const std::string& path);

  // Files deleted but not yet closed (for tests).
  std::size_t pending() const;
  // Waits until nothing is pending (for tests).
  void drain();

  static constexpr std::size_t kMaxPending = 4;

 private:
  void thread_main();

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<int> fds_;
  bool closing_ = false;  // the thread has taken a descriptor and is closing it
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace vigil
