// The log writer: one thread that owns every job log file and writes captured output to
// it, so the event loop never waits on a disk. The loop hands over filled buffers; the
// thread writes them (rotating, timestamping) and hands each buffer back through a
// uv_async, which is how the loop knows it may read more from that job. A job whose
// output outruns the disk therefore waits on its own full pipe: nothing is buffered
// without bound, nothing is dropped while the disk works.
#pragma once

#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "file_reaper.h"
#include "log_file.h"

namespace vigil {

// A chunk of output on its way to disk.
struct Chunk {
  std::unique_ptr<char[]> data;
  std::size_t size = 0;      // bytes used
  std::size_t capacity = 0;  // bytes allocated
};

class LogWriter {
 public:
  using StreamId = std::uint64_t;
  static constexpr std::size_t kChunkSize = 256 * 1024;

  // How one log is doing, as last reported by the thread.
  struct Health {
    std::string error;  // "" when fine
    std::uint64_t dropped = 0;
  };

  explicit LogWriter(uv_loop_t* loop);
  ~LogWriter();  // writes what is queued, then stops the thread
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Registers a log file (opened by the thread on first write). `on_written(id, bytes)`
  // runs on the loop each time a chunk of this stream reached the file (or was dropped,
  // with the failure recorded in its health).
  using Written = std::function<void(StreamId, std::size_t)>;
  StreamId open(const std::string& path, const LogPolicy& policy, Written on_written);
  void set_policy(StreamId id, const LogPolicy& policy);
  void close(StreamId id);
  void write(StreamId id, Chunk chunk);
  // Reopens every log by path (logrotate moved them). `done`, if given, runs on the loop
  // once they are reopened: only then does nothing more go to the moved files.
  void reopen_all(std::function<void()> done = {});
  // Reads the end of a log on the thread, after every write queued so far, so a tail
  // holds all the output read before it was asked for and a slow disk never holds up
  // the loop. `done` runs on the loop.
  void tail(const std::string& path, std::size_t lines, std::size_t max_bytes,
            std::function<void(LogTail)> done);
  // Neither reopen_all's nor tail's `done` runs once the writer is gone.
  // Writes everything queued so far before returning (for shutdown and tests).
  void flush();
  // At most `files` log files open at once (at least one): beyond it, the least recently
  // written is closed, and opened again by path when it is next written. Its descriptors
  // are a budget shared with the jobs' pipes (fd_budget.h); a few busy logs stay open.
  void set_max_open(std::size_t files);

  Health health(StreamId id) const;
  // A buffer to read into: recycled from written chunks when one is free.
  Chunk take_buffer();
  // Gives back a buffer that was not needed after all (the read found EOF).
  void recycle(Chunk chunk);

 private:
  struct Job {
    enum class Kind { write, open, policy, close, reopen, tail } kind;
    StreamId id = 0;  // for a tail or reopen: its number in answers_ (0: none wanted)
    Chunk chunk;
    std::string path;
    LogPolicy policy;
    std::size_t lines = 0, max_bytes = 0;  // for a tail
  };
  struct Done {
    StreamId id;
    std::size_t bytes;
    Chunk chunk;  // emptied, for reuse
    Health health;
  };

  // Registers a `done` for a job that answers; returns the job's id.
  std::uint64_t expect_answer(std::function<void(LogTail)> done);
  void thread_main();
  void push(Job job);
  void on_async();

  struct Stream {
    Health health;
    Written on_written;
  };

  uv_loop_t* loop_;
  uv_async_t* async_ = nullptr;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<Job> queue_;       // loop -> thread
  std::vector<Done> done_;      // thread -> loop
  std::vector<std::pair<std::uint64_t, LogTail>> answered_;  // thread -> loop
  bool busy_ = false;           // the thread is working on a job taken off the queue
  bool stopping_ = false;
  std::atomic<std::size_t> max_open_{SIZE_MAX};  // set on the loop, read by the thread

  // Owned by the thread.
  struct File {
    std::unique_ptr<LogFile> log;
    bool listed = false;                   // in open_, which holds every open file
    std::list<StreamId>::iterator recent;  // its place there, while listed
  };
  // Keeps open_ in step with a file that was just used: first when it is open, out of it
  // when it is not, then closes the least recently written beyond max_open_.
  void used(StreamId id, File& f);
  void unlist(File& f);
  std::map<StreamId, File> files_;
  std::list<StreamId> open_;  // the open files, the most recently written first
  FileReaper reaper_;  // frees dropped backups off this thread

  // Owned by the loop.
  StreamId next_id_ = 1;
  std::map<StreamId, Stream> streams_;
  std::vector<Chunk> free_;
  std::uint64_t next_answer_ = 1;
  std::map<std::uint64_t, std::function<void(LogTail)>> answers_;  // asked, not answered

  std::thread thread_;
};

}  // namespace vigil
