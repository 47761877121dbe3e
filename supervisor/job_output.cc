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
// A larger pipe means fewer wakeups for a job writing flat out.
constexpr int kPipeSize = 1024 * 1024;

bool logged(const config::Output& o) { return o.kind == config::Output::Kind::file; }

}  // namespace

struct JobOutput::Reader {
  JobOutput* owner;
  uv_pipe_t* pipe;
  Stream stream;
  LogWriter::StreamId id = 0;  // the file it writes to, once it has written
  Chunk pending;               // the buffer handed to libuv for the next read
  bool paused = false;
  LineStamper stamper;  // for log_timestamps
};

ChildStdio::~ChildStdio() {
  if (err >= 0 && err != out) ::close(err);
  if (out >= 0) ::close(out);
}

JobOutput::JobOutput(uv_loop_t* loop, LogWriter& writer, const config::JobSpec& spec, Tap tap,
                     Alarm alarm)
    : loop_(loop), writer_(writer), tap_(std::move(tap)), alarm_(std::move(alarm)) {
  set_plan(spec);
}

JobOutput::~JobOutput() {
  while (!readers_.empty()) remove_reader(readers_.front().get());
  close_sink(out_);
  close_sink(err_);
  for (auto& s : retired_) close_sink(s);
}

void JobOutput::set_plan(const config::JobSpec& spec) {
  out_.where = spec.stdout_log;
  err_.where = spec.stderr_log;
  policy_ = LogPolicy{spec.log_max_size, spec.log_backups, 0640};
  timestamps_ = spec.log_timestamps;
}

void JobOutput::close_sink(Sink& s) {
  if (s.id != 0) writer_.close(s.id);
  s.id = 0;
  s.in_flight = 0;
}

void JobOutput::redefine(const config::JobSpec& spec) {
  if (spec.stdout_log == out_.where && spec.stderr_log == err_.where) {
    set_plan(spec);
    for (Sink* s : {&out_, &err_}) {
      if (s->id != 0) writer_.set_policy(s->id, policy_);
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
  set_plan(spec);
}

LogWriter::StreamId JobOutput::stream_for(Reader& r) {
  if (r.id != 0) return r.id;
  Sink& s = r.stream == Stream::out ? out_ : err_;
  if (s.id == 0) {
    s.id = writer_.open(s.where.path, policy_,
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
  auto make = [&](const config::Output& o, Stream stream) -> int {
    if (!logged(o)) {
      int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
      return fd < 0 ? -errno : fd;
    }
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) return -errno;
    ::fcntl(p[0], F_SETPIPE_SZ, kPipeSize);  // best effort: the default works too
    add_reader(p[0], stream);
    return p[1];
  };
  io.out = make(out_.where, Stream::out);
  if (io.out < 0) {
    int err = -io.out;
    io.out = -1;
    return "cannot create a pipe for stdout: " + fs::errno_text(err);
  }
  if (err_.where.kind == config::Output::Kind::merge) {
    io.err = io.out;
    return {};
  }
  io.err = make(err_.where, Stream::err);
  if (io.err < 0) {
    int err = -io.err;
    io.err = -1;
    return "cannot create a pipe for stderr: " + fs::errno_text(err);
  }
  return {};
}

JobOutput::Reader* JobOutput::add_reader(int fd, Stream stream) {
  auto r = std::make_unique<Reader>(Reader{this, nullptr, stream, 0, {}, false, {}});
  r->pipe = new_handle<uv_pipe_t>(r.get());
  uv_pipe_init(loop_, r->pipe, 0);
  uv_pipe_open(r->pipe, fd);
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
  // Named functions, not stored pointers: uv_read_stop() forgets the callbacks, and a
  // paused reader must be able to start again.
  uv_read_start(reinterpret_cast<uv_stream_t*>(r->pipe), &JobOutput::on_alloc,
                &JobOutput::on_read);
}

void JobOutput::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
  auto* rd = static_cast<Reader*>(h->data);
  if (rd == nullptr) {
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  if (!rd->pending.data) rd->pending = rd->owner->writer_.take_buffer();
  *buf = uv_buf_init(rd->pending.data.get(), LogWriter::kChunkSize);
}

void JobOutput::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
  auto* rd = static_cast<Reader*>(s->data);
  if (rd == nullptr || n == 0) return;
  JobOutput* self = rd->owner;
  if (n < 0) {  // EOF: every writer of this pipe is gone
    self->remove_reader(rd);  // its buffer serves the next job that writes
    return;
  }
  Chunk chunk = std::move(rd->pending);
  chunk.size = static_cast<std::size_t>(n);
  if (self->timestamps_) chunk = self->stamp(*rd, std::move(chunk));
  if (self->tap_) self->tap_(rd->stream, std::string_view(chunk.data.get(), chunk.size));
  const LogWriter::StreamId id = self->stream_for(*rd);
  Sink* sink = self->find_sink(id);
  sink->in_flight += chunk.size;
  self->writer_.write(id, std::move(chunk));
  if (sink->in_flight >= kMaxInFlight) {
    uv_read_stop(s);
    rd->paused = true;
  }
}

void JobOutput::remove_reader(Reader* r) {
  if (r->pending.data) writer_.recycle(std::move(r->pending));
  close_handle(r->pipe);
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
    uv_os_fd_t fd = -1;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(r->pipe), &fd) != 0) continue;
    for (;;) {
      Chunk chunk = writer_.take_buffer();
      ssize_t n = ::read(fd, chunk.data.get(), LogWriter::kChunkSize);
      if (n <= 0) {  // EOF, or nothing more without waiting (the pipe is non-blocking)
        writer_.recycle(std::move(chunk));
        break;
      }
      chunk.size = static_cast<std::size_t>(n);
      writer_.write(stream_for(*r), std::move(chunk));
    }
  }
}

std::string JobOutput::log_error() const {
  for (auto id : {out_.id, err_.id}) {
    if (id == 0) continue;
    auto h = writer_.health(id);
    if (!h.error.empty()) {
      return h.error + " (" + std::to_string(h.dropped) + " bytes dropped so far)";
    }
  }
  return {};
}

}  // namespace vigil
