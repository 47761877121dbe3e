// Job output capture: pipes read by the loop, written by the LogWriter thread.
#include "job_output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "fsutil.h"
#include "uv_handle.h"

namespace vigil {

namespace {

// Output of one stream read but not yet on disk. At the cap, vigild stops reading and the
// job blocks on its full pipe: the job slows to the disk's pace, nothing is lost, and
// vigild's memory does not grow with the volume.
constexpr std::size_t kMaxInFlight = 4 * LogWriter::kChunkSize;
// A larger pipe means fewer wakeups for a job writing flat out. A pipe grows to it once a
// read finds the default one (16 pages) full; most jobs write little, and a bigger ring
// costs the kernel memory and vigild a page-clearing allocation at every spawn.
constexpr int kPipeSize = 1024 * 1024;
constexpr ssize_t kDefaultPipeSize = 64 * 1024;
// Chunks read from one pipe per wakeup at most (libuv's own streams read up to 32).
constexpr int kReadsPerWakeup = 16;

bool logged(const config::Output& o) { return o.kind == config::Output::Kind::file; }

}  // namespace

// One pipe from a job, read by the loop. A uv_poll_t and read(2) rather than a uv_pipe_t
// and uv_read_start: the same reads, with a handle of 160 bytes instead of 264 and no
// read buffer held between reads (a thousand jobs, two pipes each).
struct JobOutput::Reader {
  JobOutput* owner;
  uv_poll_t* poll;
  int fd;
  Stream stream;
  LogWriter::StreamId id = 0;  // the file it writes to, once it has written
  bool paused = false;
  bool grown = false;   // asked for kPipeSize already
  LineStamper stamper;  // for log_timestamps
};

ChildStdio::~ChildStdio() {
  if (err >= 0 && err != out) ::close(err);
  if (out >= 0) ::close(out);
}

JobOutput::JobOutput(uv_loop_t* loop, LogWriter& writer, Spec spec, Tap tap, Alarm alarm)
    : loop_(loop),
      writer_(writer),
      tap_(std::move(tap)),
      alarm_(std::move(alarm)),
      spec_(std::move(spec)) {}

JobOutput::~JobOutput() {
  while (!readers_.empty()) remove_reader(readers_.front().get());
  close_sink(out_);
  close_sink(err_);
  for (auto& s : retired_) close_sink(s);
}

LogPolicy JobOutput::policy() const {
  return LogPolicy{spec_->log_max_size, spec_->log_backups, 0640};
}

const config::Output& JobOutput::where(Stream s) const {
  return s == Stream::out ? spec_->stdout_log : spec_->stderr_log;
}

void JobOutput::close_sink(Sink& s) {
  if (s.id != 0) writer_.close(s.id);
  s.id = 0;
  s.in_flight = 0;
}

void JobOutput::redefine(Spec spec) {
  if (spec == spec_) return;
  const bool same_files =
      spec->stdout_log == spec_->stdout_log && spec->stderr_log == spec_->stderr_log;
  if (same_files) {
    spec_ = std::move(spec);
    for (Sink* s : {&out_, &err_}) {
      if (s->id != 0) writer_.set_policy(s->id, policy());
    }
    return;
  }
  // Other files. Pipes of the old process that wrote to the old ones go on until their
  // end of file; the old files close after them.
  for (Sink* s : {&out_, &err_}) {
    const bool in_use = s->id != 0 && std::any_of(readers_.begin(), readers_.end(),
                                                  [&](const auto& r) { return r->id == s->id; });
    if (in_use) {
      retired_.push_back(*s);
      s->id = 0;
      s->in_flight = 0;
    } else {
      close_sink(*s);
    }
  }
  spec_ = std::move(spec);
}

LogWriter::StreamId JobOutput::stream_for(Reader& r) {
  if (r.id != 0) return r.id;
  Sink& s = r.stream == Stream::out ? out_ : err_;
  if (s.id == 0) {
    s.id = writer_.open(where(r.stream).path, policy(),
                        [this](LogWriter::StreamId id, std::size_t n) { written(id, n); });
  }
  return r.id = s.id;
}

JobOutput::Sink* JobOutput::find_sink(LogWriter::StreamId id) {
  for (Sink* s : {&out_, &err_}) {
    if (s->id == id) return s;
  }
  for (auto& s : retired_) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

std::string JobOutput::prepare(ChildStdio& io) {
  auto make = [&](Stream stream) -> int {
    if (!logged(where(stream))) {
      int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
      return fd < 0 ? -errno : fd;
    }
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) return -errno;
    const int ours = fs::keep_long_lived(p[0]);  // out of the way of new jobs' descriptors
    ::fcntl(ours, F_SETFL, O_NONBLOCK);          // ours only: the job's end stays blocking
    add_reader(ours, stream);
    return p[1];
  };
  io.out = make(Stream::out);
  if (io.out < 0) {
    int err = -io.out;
    io.out = -1;
    return "cannot create a pipe for stdout: " + fs::errno_text(err);
  }
  if (spec_->stderr_log.kind == config::Output::Kind::merge) {
    io.err = io.out;
    return {};
  }
  io.err = make(Stream::err);
  if (io.err < 0) {
    int err = -io.err;
    io.err = -1;
    return "cannot create a pipe for stderr: " + fs::errno_text(err);
  }
  return {};
}

JobOutput::Reader* JobOutput::add_reader(int fd, Stream stream) {
  auto r = std::make_unique<Reader>(Reader{this, nullptr, fd, stream, 0, false, false, {}});
  r->poll = new_handle<uv_poll_t>(r.get());
  uv_poll_init(loop_, r->poll, fd);
  Reader* raw = r.get();
  readers_.push_back(std::move(r));
  start_reading(raw);
  return raw;
}

Chunk JobOutput::stamp(Reader& r, Chunk raw) {
  // Stamped here, on the loop, so the file and live followers see the same bytes.
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  std::string out;
  out.reserve(raw.size + 64);
  r.stamper.apply(std::string_view(raw.data.get(), raw.size), LineStamper::prefix(ts), out);
  Chunk stamped;
  if (out.size() <= LogWriter::kChunkSize) {
    stamped = std::move(raw);  // reuse the buffer when it fits
  } else {
    stamped.data = std::make_unique_for_overwrite<char[]>(out.size());
  }
  std::memcpy(stamped.data.get(), out.data(), out.size());
  stamped.size = out.size();
  stamped.capacity = std::max(out.size(), stamped.capacity);
  return stamped;
}

void JobOutput::start_reading(Reader* r) {
  uv_poll_start(r->poll, UV_READABLE | UV_DISCONNECT, &JobOutput::on_poll);
}

void JobOutput::on_poll(uv_poll_t* h, int status, int) {
  auto* rd = static_cast<Reader*>(h->data);
  if (rd == nullptr) return;
  JobOutput* self = rd->owner;
  // Up to a few chunks at a time, then back to the loop (which calls again while there is
  // more: level-triggered), so one flooding job cannot keep the others waiting.
  if (status < 0) {  // the pipe failed: as good as its end
    self->remove_reader(rd);
    return;
  }
  for (int i = 0; i < kReadsPerWakeup && !rd->paused; ++i) {
    Chunk chunk = self->writer_.take_buffer();
    const ssize_t n = ::read(rd->fd, chunk.data.get(), LogWriter::kChunkSize);
    const int err = n < 0 ? errno : 0;
    if (err == EINTR || err == EAGAIN || err == EWOULDBLOCK) {
      self->writer_.recycle(std::move(chunk));
      if (err == EINTR) continue;
      return;  // all read: the loop calls again when there is more
    }
    if (n <= 0) {  // EOF (every writer of this pipe is gone), or the pipe failed
      self->writer_.recycle(std::move(chunk));  // it serves the next job that writes
      self->remove_reader(rd);
      return;
    }
    if (n >= kDefaultPipeSize && !rd->grown) {
      rd->grown = true;
      ::fcntl(rd->fd, F_SETPIPE_SZ, kPipeSize);  // best effort: the default works too
    }
    chunk.size = static_cast<std::size_t>(n);
    self->consume(*rd, std::move(chunk));
  }
}

void JobOutput::consume(Reader& rd, Chunk chunk) {
  if (spec_->log_timestamps) chunk = stamp(rd, std::move(chunk));
  if (tap_) tap_(rd.stream, std::string_view(chunk.data.get(), chunk.size));
  const LogWriter::StreamId id = stream_for(rd);
  Sink* sink = find_sink(id);
  sink->in_flight += chunk.size;
  writer_.write(id, std::move(chunk));
  if (sink->in_flight >= kMaxInFlight) {
    uv_poll_stop(rd.poll);
    rd.paused = true;
  }
}

void JobOutput::remove_reader(Reader* r) {
  close_handle(r->poll);  // stops polling: only then may the descriptor close
  ::close(r->fd);
  readers_.remove_if([&](const auto& p) { return p.get() == r; });
  // A replaced file that no pipe writes to any more is done with.
  retired_.remove_if([&](Sink& s) {
    const bool in_use = std::any_of(readers_.begin(), readers_.end(),
                                    [&](const auto& rd) { return rd->id == s.id; });
    if (!in_use) close_sink(s);
    return !in_use;
  });
}

void JobOutput::written(LogWriter::StreamId id, std::size_t bytes) {
  if (alarm_) {
    std::string now = writer_.health(id).error;
    if (now != last_error_) {
      last_error_ = now;
      alarm_(now);
    }
  }
  Sink* sink = find_sink(id);
  if (sink == nullptr) return;
  sink->in_flight -= std::min(sink->in_flight, bytes);
  if (sink->in_flight >= kMaxInFlight) return;
  for (auto& r : readers_) {
    if (r->id == id && r->paused) {
      r->paused = false;
      start_reading(r.get());
    }
  }
}

void JobOutput::drain() {
  for (auto& r : readers_) {
    for (;;) {
      Chunk chunk = writer_.take_buffer();
      ssize_t n = ::read(r->fd, chunk.data.get(), LogWriter::kChunkSize);
      if (n <= 0) {  // EOF, or nothing more without waiting (the pipe is non-blocking)
        writer_.recycle(std::move(chunk));
        break;
      }
      chunk.size = static_cast<std::size_t>(n);
      // As any output read: stamped, and shown to followers (whose stream ends next).
      consume(*r, std::move(chunk));
    }
  }
}

std::string JobOutput::log_error() const {
  for (Stream s : {Stream::out, Stream::err}) {
    const auto id = (s == Stream::out ? out_ : err_).id;
    if (id == 0) continue;
    auto h = writer_.health(id);
    if (!h.error.empty()) {
      // The setting that names the file, so that the reader knows what to change.
      return "jobs." + spec_->name + (s == Stream::out ? ".stdout: " : ".stderr: ") + h.error +
             " (" + std::to_string(h.dropped) + " bytes dropped so far)";
    }
  }
  return {};
}

}  // namespace vigil
