// The log writer thread.
#include "log_writer.h"

#include <algorithm>
#include <optional>

#include "uv_handle.h"

namespace vigil {

namespace {
// Spare buffers kept for reuse; beyond this they are freed, so memory follows the load.
constexpr std::size_t kMaxFree = 16;
}  // namespace

LogWriter::LogWriter(uv_loop_t* loop) : loop_(loop) {
  async_ = new_handle<uv_async_t>(this);
  uv_async_init(loop_, async_, [](uv_async_t* a) {
    if (auto* self = static_cast<LogWriter*>(a->data)) self->on_async();
  });
  // The writer never keeps the loop alive by itself: jobs and the socket do.
  uv_unref(reinterpret_cast<uv_handle_t*>(async_));
  thread_ = std::thread([this] { thread_main(); });
}

LogWriter::~LogWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
  close_handle(async_);
}

void LogWriter::push(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
}

LogWriter::StreamId LogWriter::open(const std::string& path, const LogPolicy& policy,
                                    Written on_written) {
  const StreamId id = next_id_++;
  streams_[id] = Stream{{}, std::move(on_written)};
  Job j{Job::Kind::open, id, {}, path, policy};
  push(std::move(j));
  return id;
}

void LogWriter::set_policy(StreamId id, const LogPolicy& policy) {
  push(Job{Job::Kind::policy, id, {}, {}, policy});
}

void LogWriter::close(StreamId id) {
  streams_.erase(id);  // chunks still on their way are not reported to anyone
  push(Job{Job::Kind::close, id, {}, {}, {}});
}

void LogWriter::write(StreamId id, Chunk chunk) {
  push(Job{Job::Kind::write, id, std::move(chunk), {}, {}});
}

std::uint64_t LogWriter::expect_answer(std::function<void(LogTail)> done) {
  const std::uint64_t n = next_answer_++;
  answers_[n] = std::move(done);
  return n;
}

void LogWriter::reopen_all(std::function<void()> done) {
  const std::uint64_t n = done ? expect_answer([done = std::move(done)](LogTail) { done(); }) : 0;
  push(Job{Job::Kind::reopen, n, {}, {}, {}});
}

void LogWriter::tail(const std::string& path, std::size_t lines, std::size_t max_bytes,
                     std::function<void(LogTail)> done) {
  Job j{Job::Kind::tail, expect_answer(std::move(done)), {}, path, {}};
  j.lines = lines;
  j.max_bytes = max_bytes;
  push(std::move(j));
}

void LogWriter::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [&] { return queue_.empty() && !busy_; });
  lock.unlock();
  on_async();  // account for what was just written
}

void LogWriter::set_max_open(std::size_t files) {
  max_open_.store(std::max<std::size_t>(files, 1), std::memory_order_relaxed);
}

void LogWriter::unlist(File& f) {
  if (!f.listed) return;
  open_.erase(f.recent);
  f.listed = false;
}

void LogWriter::used(StreamId id, File& f) {
  if (!f.log->is_open()) {
    unlist(f);
    return;
  }
  if (!f.listed) {
    open_.push_front(id);
    f.recent = open_.begin();
    f.listed = true;
  } else if (f.recent != open_.begin()) {
    open_.splice(open_.begin(), open_, f.recent);  // iterators stay valid
  }
  const std::size_t max = max_open_.load(std::memory_order_relaxed);
  while (open_.size() > max) {
    File& oldest = files_.at(open_.back());
    oldest.log->close_for_now();
    unlist(oldest);
  }
}

LogWriter::Health LogWriter::health(StreamId id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? Health{} : it->second.health;
}

Chunk LogWriter::take_buffer() {
  if (!free_.empty()) {
    Chunk c = std::move(free_.back());
    free_.pop_back();
    return c;
  }
  return Chunk{std::make_unique_for_overwrite<char[]>(kChunkSize), 0, kChunkSize};
}

void LogWriter::recycle(Chunk chunk) {
  if (chunk.data && free_.size() < kMaxFree && chunk.capacity == kChunkSize) {
    chunk.size = 0;
    free_.push_back(std::move(chunk));
  }
}

void LogWriter::thread_main() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) {
      if (stopping_) return;
      continue;
    }
    Job job = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();

    std::size_t bytes = 0;
    Health health;
    bool report = false;
    std::optional<LogTail> answer;
    switch (job.kind) {
      case Job::Kind::open: {
        // Opened by its first write.
        File& f = files_[job.id];
        f.log = std::make_unique<LogFile>(job.path, job.policy);
        f.log->set_reaper(&reaper_);
        break;
      }
      case Job::Kind::policy:
        if (auto it = files_.find(job.id); it != files_.end()) {
          it->second.log->set_policy(job.policy);
        }
        break;
      case Job::Kind::close:
        if (auto it = files_.find(job.id); it != files_.end()) {
          unlist(it->second);
          files_.erase(it);
        }
        break;
      case Job::Kind::reopen:
        // The open files, and those that failed (retried now). A file closed to stay
        // within max_open_ is opened by path anyway, on its next write.
        for (auto& [id, f] : files_) {
          if (!f.log->is_open() && f.log->error().empty()) continue;
          f.log->reopen();
          used(id, f);
        }
        if (job.id != 0) answer.emplace();
        break;
      case Job::Kind::tail:
        answer = tail_lines(job.path, job.lines, job.max_bytes);
        break;
      case Job::Kind::write:
        if (auto it = files_.find(job.id); it != files_.end()) {
          LogFile& log = *it->second.log;
          log.write(std::string_view(job.chunk.data.get(), job.chunk.size));
          health = {log.error(), log.dropped()};
          used(job.id, it->second);
        }
        bytes = job.chunk.size;
        report = true;
        break;
    }

    lock.lock();
    busy_ = false;
    if (report) {
      job.chunk.size = 0;
      done_.push_back(Done{job.id, bytes, std::move(job.chunk), std::move(health)});
      uv_async_send(async_);
    }
    if (answer) {
      answered_.emplace_back(job.id, std::move(*answer));
      uv_async_send(async_);
    }
    if (queue_.empty()) idle_.notify_all();
  }
}

void LogWriter::on_async() {
  std::vector<Done> done;
  std::vector<std::pair<std::uint64_t, LogTail>> answered;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(done_);
    answered.swap(answered_);
  }
  for (auto& [n, result] : answered) {
    auto it = answers_.find(n);
    if (it == answers_.end()) continue;
    auto cb = std::move(it->second);
    answers_.erase(it);
    cb(std::move(result));
  }
  for (auto& d : done) {
    recycle(std::move(d.chunk));
    auto it = streams_.find(d.id);
    if (it == streams_.end()) continue;
    it->second.health = d.health;
    // A copy: the callback may close this very stream.
    auto cb = it->second.on_written;
    if (cb) cb(d.id, d.bytes);
  }
}

}  // namespace vigil
