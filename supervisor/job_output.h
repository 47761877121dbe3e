// Where a job's stdout and stderr go. A logged stream is a pipe that vigild reads: what
// the job writes is handed to the LogWriter thread (rotation, timestamps, reopen) and to
// anyone following the log live. "null" is /dev/null with no pipe at all, and
// "stderr: stdout" shares stdout's pipe. This module is the one place that decides it.
#pragma once

#include <uv.h>

#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "log_writer.h"
#include "spec.h"

namespace vigil {

// The descriptors a new job process gets as its stdout and stderr, owned until the spawn
// is over (the parent keeps none of them afterwards).
struct ChildStdio {
  int out = -1;
  int err = -1;
  ChildStdio() = default;
  ChildStdio(const ChildStdio&) = delete;
  ChildStdio& operator=(const ChildStdio&) = delete;
  ~ChildStdio();
};

class JobOutput {
 public:
  enum class Stream { out, err };
  // Called on the loop with output as it is read (for live followers).
  using Tap = std::function<void(Stream, std::string_view)>;
  // Called when writing a log starts failing (with the reason) or works again ("").
  using Alarm = std::function<void(const std::string&)>;

  using Spec = std::shared_ptr<const config::JobSpec>;
  JobOutput(uv_loop_t* loop, LogWriter& writer, Spec spec, Tap tap, Alarm alarm);
  ~JobOutput();
  JobOutput(const JobOutput&) = delete;
  JobOutput& operator=(const JobOutput&) = delete;

  // Takes the new definition's paths and rotation settings for the next spawn.
  void redefine(Spec spec);
  // Makes the descriptors for the next process. Returns "" or the reason.
  std::string prepare(ChildStdio& io);
  // Reads what is left in the pipes without waiting (at shutdown, or when a reload removed
  // the job), as output read on the loop is: stamped, shown to followers, written.
  void drain();
  // Health of the log files: the first error, or "".
  std::string log_error() const;

 private:
  struct Reader;
  // Where one of the job's streams goes. A log file is registered with the writer on the
  // first output for it, so a job that never writes costs no writer state at all.
  struct Sink {
    LogWriter::StreamId id = 0;  // 0: nothing written yet (or not a file)
    std::size_t in_flight = 0;   // bytes handed to the writer, not yet written
  };

  LogPolicy policy() const;
  const config::Output& where(Stream s) const;
  // The writer's stream for a reader's output, registering the file on first use.
  LogWriter::StreamId stream_for(Reader& r);
  Sink* find_sink(LogWriter::StreamId id);
  void close_sink(Sink& s);
  // The writer wrote `bytes` of this stream: read more if reading was paused.
  void written(LogWriter::StreamId id, std::size_t bytes);
  Reader* add_reader(int fd, Stream stream);
  void start_reading(Reader* r);
  static void on_poll(uv_poll_t* h, int status, int events);
  // Output read from a pipe: stamped, shown to followers, handed to the writer.
  void consume(Reader& r, Chunk chunk);
  void remove_reader(Reader* r);
  Chunk stamp(Reader& r, Chunk raw);

  uv_loop_t* loop_;
  LogWriter& writer_;
  Tap tap_;
  Alarm alarm_;
  std::string last_error_;
  Spec spec_;  // the job's own definition, shared with it: paths, rotation, timestamps
  Sink out_, err_;
  // Files replaced by a reload that pipes of the old process still write to: closed once
  // the last of those pipes ends.
  std::list<Sink> retired_;
  std::list<std::unique_ptr<Reader>> readers_;  // one per live pipe (old ones drain to EOF)
};

}  // namespace vigil
