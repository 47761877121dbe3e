// The control socket server.
#include "control_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <vector>

#include "accounts.h"
#include "fsutil.h"
#include "resident.h"

namespace vigil {

namespace {

using protocol::json;

// One write queued to a client. Its bytes count in the clients' memory until libuv is
// done with them (written, or cancelled when the client goes).
struct WriteReq {
  WriteReq(std::string bytes, std::shared_ptr<ClientMemory> counted)
      : data(std::move(bytes)), memory(std::move(counted)) {
    memory->add(data.size());
  }
  ~WriteReq() { memory->remove(data.size()); }
  WriteReq(const WriteReq&) = delete;
  WriteReq& operator=(const WriteReq&) = delete;

  uv_write_t req{};
  std::string data;
  std::shared_ptr<ClientMemory> memory;
};

// Why the socket at `path` cannot be taken over, or "" when it can: only a socket that
// refuses connections (nobody listens: its daemon is dead) is a stale one. A daemon that
// accepts, or whose backlog is full (EAGAIN), is alive; one we may not even try to
// reach (EACCES) might be, and is left alone too.
std::string stale_socket_check(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return "cannot check whether " + path + " is in use: " + fs::errno_text(errno);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  const int err = rc == 0 ? 0 : errno;
  ::close(fd);
  if (err == ECONNREFUSED || err == ENOENT) return {};
  if (err == 0 || err == EAGAIN || err == EINPROGRESS) {
    return "socket " + path + " is in use by another process";
  }
  return "cannot check whether " + path + " is in use: " + fs::errno_text(err);
}

// The descriptor kept in reserve for refusing clients when all others are taken.
int open_reserve() {
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  return fd < 0 ? -1 : fs::keep_long_lived(fd);
}

// How long accepting pauses when not even a refusal is possible (no descriptor at all).
constexpr std::uint64_t kAcceptRetryMs = 250;
// The free heap goes back this long after a big release, so that a release made of many
// frees (a client's queue cancelled write by write) is given back once.
constexpr std::uint64_t kGiveBackDelayMs = 100;

std::string mib(std::size_t bytes) {
  return std::to_string(bytes / (1024 * 1024)) + " MiB";
}

}  // namespace

void ClientMemory::add(std::size_t bytes) {
  held += bytes;
  peak = std::max(peak, held);
}

void ClientMemory::remove(std::size_t bytes) {
  held -= std::min(bytes, held);
  if (server != nullptr && peak - held >= kGiveBackAfter) server->give_back_soon();
}

ControlServer::Holding::Holding(Holding&& other) noexcept
    : memory_(std::move(other.memory_)), bytes_(other.bytes_) {
  other.bytes_ = 0;
}

void ControlServer::Holding::set(std::size_t bytes) {
  if (memory_ == nullptr || bytes == bytes_) return;
  if (bytes > bytes_) {
    memory_->add(bytes - bytes_);
  } else {
    memory_->remove(bytes_ - bytes);
  }
  bytes_ = bytes;
}

ControlServer::ControlServer(uv_loop_t* loop, Handler& handler, Logger& log)
    : loop_(loop), handler_(handler), log_(log) {
  memory_->server = this;
}

ControlServer::~ControlServer() {
  memory_->server = nullptr;  // writes still queued settle their bytes without us
  close();
  give_back_timer_.reset();
}

std::string ControlServer::listen(const config::SupervisorSpec& spec) {
  path_ = spec.socket;
  if (path_.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return "socket path is too long (at most " +
           std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes): " + path_;
  }
  if (spec.socket_group) {
    group_ = accounts::find_group(*spec.socket_group);
    if (!group_) return "socket_group: no group named '" + *spec.socket_group + "'";
  }
  if (auto err = fs::make_dirs(fs::dirname(path_), 0755); !err.empty()) {
    return "supervisor.socket: " + err;
  }

  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode)) {
      return "supervisor.socket: " + path_ +
             " is a symbolic link; vigild does not follow links for its socket (remove it if "
             "nothing else uses it)";
    }
    if (!S_ISSOCK(st.st_mode)) {
      return "supervisor.socket: " + path_ +
             " exists and is not a socket (remove it if nothing "
             "else uses it)";
    }
    if (auto why = stale_socket_check(path_); !why.empty()) return why;
    ::unlink(path_.c_str());  // a dead daemon's socket
  }

  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return "cannot create the control socket: " + fs::errno_text(errno);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
  // The socket is born owner-only (the umask applies to bind); group access is added
  // only after the group is set, so it is never more open than configured.
  const mode_t old = ::umask(0177);
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  const int bind_errno = errno;
  ::umask(old);
  if (rc != 0) {
    ::close(fd);
    return "cannot bind " + path_ + ": " + fs::errno_text(bind_errno);
  }
  listen_fd_ = fd;  // from here on, close() removes the socket file
  if (group_ && ::chown(path_.c_str(), static_cast<uid_t>(-1), *group_) != 0) {
    std::string err = "cannot set group of " + path_ + ": " + fs::errno_text(errno);
    close();
    return err;
  }
  if (::chmod(path_.c_str(), spec.socket_mode) != 0) {
    std::string err = "cannot set mode of " + path_ + ": " + fs::errno_text(errno);
    close();
    return err;
  }
  if (::listen(listen_fd_, SOMAXCONN) != 0) {
    std::string err = "cannot listen on " + path_ + ": " + fs::errno_text(errno);
    close();
    return err;
  }
  reserve_fd_ = open_reserve();
  listener_ = new_handle<uv_poll_t>(this);
  rc = uv_poll_init(loop_, listener_, listen_fd_);
  if (rc == 0) rc = uv_poll_start(listener_, UV_READABLE, &ControlServer::on_connection);
  if (rc != 0) {
    close();
    return "cannot listen on " + path_ + ": " + uv_strerror(rc);
  }
  return {};
}

void ControlServer::close() {
  // The socket goes first: a client that sees its connection close can count on the
  // path being free for the next daemon.
  close_handle(listener_);  // stops polling at once, before the descriptor goes
  accept_retry_.reset();
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    ::unlink(path_.c_str());
  }
  if (reserve_fd_ >= 0) {
    ::close(reserve_fd_);
    reserve_fd_ = -1;
  }
  // Every client goes now, at once: the server is going away, so nothing may wait for a
  // close callback. The handler hears of each after the map is empty, so it can look at
  // the server without finding half of it.
  auto gone = std::move(clients_);
  clients_.clear();
  for (auto& [id, c] : gone) {
    stop_hangup_watch(*c);
    auto* raw = reinterpret_cast<uv_handle_t*>(c->pipe);
    raw->data = nullptr;  // its close callback only frees the handle
    if (!uv_is_closing(raw)) uv_close(raw, &ControlServer::on_closed);
  }
  for (auto& [id, c] : gone) {
    if (!c->notified) handler_.on_disconnect(id);
  }
}

bool ControlServer::peer_allowed(const Peer& p) const {
  if (p.uid == 0 || p.uid == ::geteuid()) return true;
  return group_ && accounts::member_of(p.uid, p.gid, *group_);
}

void ControlServer::on_connection(uv_poll_t* poll, int, int) {
  // An error on the listening socket shows in accept() itself, and is handled there.
  if (auto* self = static_cast<ControlServer*>(poll->data)) self->accept_pending();
}

void ControlServer::accept_pending() {
  while (listen_fd_ >= 0) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      if (accept_failing_) {
        log_.info("control socket: accepting clients again (" + std::to_string(refused_busy_) +
                  " refused with `busy` meanwhile)");
        accept_failing_ = false;
        refused_busy_ = 0;
      }
      accept_one(fd);
      continue;
    }
    const int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return;
    if (err == EINTR || err == ECONNABORTED) continue;
    if (err == EMFILE || err == ENFILE) {
      // Out of descriptors, accept() fails whether or not a client waits: refuse_one()
      // tells which.
      const int refused = refuse_one(err);
      if (refused == 0 || refused == EINTR || refused == ECONNABORTED) continue;
      if (refused == EAGAIN || refused == EWOULDBLOCK) return;
    }
    pause_accepting(err);
    return;
  }
}

int ControlServer::refuse_one(int accept_errno) {
  // The client would otherwise wait in the backlog for a descriptor, or be closed
  // without a word; it is told why, and a script can retry. Another thread may take
  // the freed slot first: then this fails and accepting pauses for a moment.
  if (reserve_fd_ < 0) reserve_fd_ = open_reserve();
  if (reserve_fd_ < 0) return accept_errno;
  ::close(reserve_fd_);
  const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  const int err = errno;
  if (fd >= 0) {
    const std::string line = protocol::encode_error(
        nullptr, {protocol::code::busy,
                  "vigild is out of file descriptors (" + fs::errno_text(accept_errno) +
                      "); try again once it has some to spare",
                  nullptr});
    // Best effort: a new connection's buffer is empty, and the line is short.
    [[maybe_unused]] auto sent = ::send(fd, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    ::close(fd);
  }
  reserve_fd_ = open_reserve();
  if (fd < 0) return err;
  accept_trouble(accept_errno);
  ++refused_busy_;
  return 0;
}

void ControlServer::pause_accepting(int accept_errno) {
  accept_trouble(accept_errno);
  uv_poll_stop(listener_);
  if (!accept_retry_) {
    accept_retry_ = std::make_unique<Timer>(loop_, [this] {
      if (listener_ == nullptr) return;
      uv_poll_start(listener_, UV_READABLE, &ControlServer::on_connection);
      accept_pending();
    });
  }
  accept_retry_->start(kAcceptRetryMs);
}

void ControlServer::accept_trouble(int accept_errno) {
  if (accept_failing_) return;
  accept_failing_ = true;
  log_.warn("control socket: cannot accept clients: " + fs::errno_text(accept_errno) +
            (accept_errno == EMFILE || accept_errno == ENFILE
                 ? "; new clients get a `busy` answer until descriptors are free"
                 : "; retrying"));
}

void ControlServer::accept_one(int fd) {
  auto* pipe = new_handle<uv_pipe_t>(nullptr);
  uv_pipe_init(loop_, pipe, 0);
  if (uv_pipe_open(pipe, fd) != 0) {
    ::close(fd);
    close_handle(pipe);
    return;
  }
  Peer peer;
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    close_handle(pipe);
    return;
  }
  peer = {cred.pid, cred.uid, cred.gid};

  auto client = std::make_unique<Client>(
      Client{this, next_id_++, pipe, peer, protocol::LineReader{}, false, false});
  pipe->data = client.get();
  client->holding.attach(memory_);
  Client& c = *client;
  clients_.emplace(c.id, std::move(client));

  if (!peer_allowed(peer)) {
    log_.warn("control socket: refused uid " + std::to_string(peer.uid) + " (pid " +
              std::to_string(peer.pid) + ")");
    send_error(c.id, nullptr,
               {protocol::code::permission_denied,
                "uid " + std::to_string(peer.uid) + " may not use this socket", nullptr});
    close_after_flush(c);
    return;
  }
  if (clients_.size() > kMaxClients) {
    send_error(c.id, nullptr,
               {protocol::code::busy,
                "too many clients (at most " + std::to_string(kMaxClients) + ")", nullptr});
    close_after_flush(c);
    return;
  }
  uv_read_start(reinterpret_cast<uv_stream_t*>(pipe), &ControlServer::on_alloc,
                &ControlServer::on_read);
}

void ControlServer::on_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf) {
  auto* c = static_cast<Client*>(handle->data);
  if (c == nullptr) {
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  // One buffer for all clients: each read is consumed before the next is made.
  *buf = uv_buf_init(c->server->read_buf_, sizeof c->server->read_buf_);
}

void ControlServer::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Client*>(stream->data);
  if (c == nullptr) return;
  if (nread == UV_EOF) {
    c->input_closed = true;
    uv_read_stop(stream);
    if (!c->server->handler_.on_input_closed(c->id)) {
      c->server->close_after_flush(*c);
    } else {
      c->server->watch_hangup(*c);
    }
    return;
  }
  if (nread < 0) {
    c->server->drop(*c);
    return;
  }
  if (nread > 0) c->server->handle_bytes(*c, std::string_view(buf->base, nread));
}

void ControlServer::watch_hangup(Client& c) {
  // The client's input is closed while something is still owed to it: a half-closed
  // client (`... | socat`) waits for it, but one that has gone altogether (a follower
  // ended with Ctrl-C) never will, and nothing is sent to a follower of a quiet job to
  // find out. The two differ in POLLHUP, which only the full close raises.
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(c.pipe), &fd) != 0) return;
  struct pollfd p {fd, 0, 0};
  if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)) != 0) {
    drop(c);
    return;
  }
  // Not yet: watch for it on a second descriptor of the same socket, which the loop
  // polls for nothing but the hang-up (epoll always reports it; the stream's own
  // descriptor is polled only while reading or writing).
  const int dup = fs::keep_long_lived(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (dup < 0) return;  // then it goes when a send fails, as before
  c.hangup = new_handle<uv_poll_t>(&c);
  c.hangup_fd = dup;
  if (uv_poll_init(loop_, c.hangup, dup) != 0 ||
      uv_poll_start(c.hangup, UV_PRIORITIZED, [](uv_poll_t* h, int, int) {
        if (auto* client = static_cast<Client*>(h->data)) client->server->drop(*client);
      }) != 0) {
    stop_hangup_watch(c);
  }
}

void ControlServer::stop_hangup_watch(Client& c) {
  if (c.hangup == nullptr) return;
  // uv_close takes the descriptor out of the loop's poll set at once: it may be closed.
  close_handle(c.hangup);
  ::close(c.hangup_fd);
  c.hangup_fd = -1;
}

void ControlServer::handle_bytes(Client& c, std::string_view bytes) {
  // Lines are taken out first and handled after: handling one may drop the client (its
  // replies piling up), and the reader must not be in the middle of a feed then.
  std::vector<std::string> lines;
  auto status = c.reader.feed(bytes, [&](std::string_view line) { lines.emplace_back(line); });
  const ClientId id = c.id;
  // An unended line is held for the client: it counts with what all clients hold.
  c.holding.set(c.reader.pending() + c.charged);
  if (c.reader.pending() > 0 && !make_room(id, 0)) return;
  for (const auto& line : lines) {
    auto it = clients_.find(id);
    if (it == clients_.end() || it->second->closing) return;
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank line
    auto parsed = protocol::parse_request(line);
    if (auto* failure = std::get_if<protocol::ParseFailure>(&parsed)) {
      send_error(id, failure->id, failure->error);
      continue;
    }
    handler_.on_request(id, it->second->peer, std::move(std::get<protocol::Request>(parsed)));
  }
  auto it = clients_.find(id);
  if (status == protocol::LineReader::Status::too_large && it != clients_.end() &&
      !it->second->closing) {
    send_error(id, nullptr,
               {protocol::code::too_large,
                "request line over " + std::to_string(protocol::kMaxLine) + " bytes", nullptr});
    if ((it = clients_.find(id)) != clients_.end()) close_after_flush(*it->second);
  }
}

void ControlServer::send(ClientId id, const std::string& line) {
  auto it = clients_.find(id);
  if (it == clients_.end() || it->second->dropped) return;
  Client& c = *it->second;
  auto* stream = reinterpret_cast<uv_stream_t*>(c.pipe);
  if (uv_stream_get_write_queue_size(stream) == 0) {
    // Fast path: most replies fit in the socket buffer and need no queueing.
    uv_buf_t b = uv_buf_init(const_cast<char*>(line.data()), line.size());
    int n = uv_try_write(stream, &b, 1);
    if (n == static_cast<int>(line.size())) return;
    if (n < 0 && n != UV_EAGAIN) {
      drop(c);
      return;
    }
    if (n > 0) {
      if (line.size() - static_cast<std::size_t>(n) > kMaxQueuedOutput) {
        disconnect(id);
        return;
      }
      if (!make_room(id, line.size() - static_cast<std::size_t>(n))) return;
      auto* w = new WriteReq(line.substr(n), memory_);
      uv_buf_t rest = uv_buf_init(w->data.data(), w->data.size());
      uv_write(&w->req, stream, &rest, 1, [](uv_write_t* r, int) {
        delete reinterpret_cast<WriteReq*>(r);
      });
      return;
    }
  }
  if (uv_stream_get_write_queue_size(stream) + line.size() > kMaxQueuedOutput) {
    disconnect(id);
    return;
  }
  if (!make_room(id, line.size())) return;
  auto* w = new WriteReq(line, memory_);
  uv_buf_t b = uv_buf_init(w->data.data(), w->data.size());
  if (uv_write(&w->req, stream, &b, 1,
               [](uv_write_t* r, int) { delete reinterpret_cast<WriteReq*>(r); }) != 0) {
    delete w;
    drop(c);
  }
}

void ControlServer::send_result(ClientId client, const json& id, const json& result) {
  send(client, protocol::encode_result(id, result));
}

void ControlServer::send_error(ClientId client, const json& id, const protocol::Error& err) {
  send(client, protocol::encode_error(id, err));
}

void ControlServer::close_when_done(ClientId id) {
  auto it = clients_.find(id);
  if (it != clients_.end()) close_after_flush(*it->second);
}

void ControlServer::disconnect(ClientId id) {
  auto it = clients_.find(id);
  if (it != clients_.end() && !it->second->dropped) {
    // What waits for it, in the log: the bound it hit can be checked from outside.
    const Client& c = *it->second;
    const std::size_t unread =
        c.charged + (c.pipe == nullptr
                         ? 0
                         : uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(c.pipe)));
    log_.warn("control socket: dropping client " + std::to_string(id) +
              ": it is not reading its replies (" + std::to_string(unread) +
              " bytes wait for it, at most " + std::to_string(kMaxQueuedOutput) + ")");
    drop(*it->second);
  }
}

bool ControlServer::charge(ClientId id, std::size_t bytes) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return false;
  Client& c = *it->second;
  c.charged += bytes;
  c.holding.set(c.reader.pending() + c.charged);
  return make_room(id, 0);
}

void ControlServer::refund(ClientId id, std::size_t bytes) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = *it->second;
  c.charged -= std::min(bytes, c.charged);
  c.holding.set(c.reader.pending() + c.charged);
}

std::size_t ControlServer::held_by(const Client& c) const {
  const auto* stream = reinterpret_cast<const uv_stream_t*>(c.pipe);
  return (c.pipe == nullptr ? 0 : uv_stream_get_write_queue_size(stream)) + c.holding.bytes();
}

bool ControlServer::make_room(ClientId id, std::size_t incoming) {
  if (memory_->held + incoming <= kMaxClientMemory) return true;
  // Over the bound by the count, which still has the bytes of clients on their way out
  // (their writes are cancelled once libuv closes them): count those still here, the
  // ones holding most first.
  std::vector<std::pair<std::size_t, ClientId>> holders;
  std::size_t total = 0;
  for (const auto& [cid, c] : clients_) {
    if (c->pipe == nullptr || uv_is_closing(reinterpret_cast<uv_handle_t*>(c->pipe))) continue;
    const std::size_t held = held_by(*c) + (cid == id ? incoming : 0);
    total += held;
    holders.emplace_back(held, cid);
  }
  if (total > kMaxClientMemory) {
    std::sort(holders.begin(), holders.end(), std::greater<>());
    for (const auto& [held, cid] : holders) {
      if (total <= kMaxClientMemory) break;
      auto it = clients_.find(cid);
      if (it == clients_.end()) continue;  // gone with an earlier one
      evict(*it->second, held, total);
      total -= held;
    }
  }
  auto it = clients_.find(id);
  return it != clients_.end() && it->second->pipe != nullptr &&
         !uv_is_closing(reinterpret_cast<uv_handle_t*>(it->second->pipe));
}

void ControlServer::evict(Client& c, std::size_t held, std::size_t total) {
  log_.warn("control socket: clients hold " + std::to_string(total) + " bytes, more than the " +
            mib(kMaxClientMemory) + " vigild keeps for them: dropping client " +
            std::to_string(c.id) + " (uid " + std::to_string(c.peer.uid) + ", pid " +
            std::to_string(c.peer.pid) + "), which holds the most (" + std::to_string(held) +
            " bytes)");
  // Told why if it reads, at no cost if it does not: nothing is queued for it.
  const std::string line = protocol::encode_error(
      nullptr,
      {protocol::code::busy,
       "vigild holds too much for its clients (at most " + mib(kMaxClientMemory) +
           " together); this connection held the most (" + std::to_string(held) + " bytes)",
       nullptr});
  uv_buf_t b = uv_buf_init(const_cast<char*>(line.data()), line.size());
  if (uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(c.pipe)) == 0) {
    [[maybe_unused]] int n = uv_try_write(reinterpret_cast<uv_stream_t*>(c.pipe), &b, 1);
  }
  drop(c);
}

void ControlServer::give_back_soon() {
  if (give_back_armed_) return;
  give_back_armed_ = true;
  if (!give_back_timer_) {
    give_back_timer_ = std::make_unique<Timer>(loop_, [this] {
      give_back_armed_ = false;
      release_free_heap();
      memory_->peak = memory_->held;
    });
  }
  give_back_timer_->start(kGiveBackDelayMs);
}

bool ControlServer::input_closed(ClientId id) const {
  auto it = clients_.find(id);
  return it != clients_.end() && it->second->input_closed;
}

void ControlServer::close_after_flush(Client& c) {
  if (c.closing) return;
  c.closing = true;
  auto* stream = reinterpret_cast<uv_stream_t*>(c.pipe);
  uv_read_stop(stream);
  auto* req = new uv_shutdown_t{};
  if (uv_shutdown(req, stream, [](uv_shutdown_t* r, int) {
        // The stream's data is the client until the client is closed: a shutdown that
        // completes (or is cancelled) after that finds nobody to drop.
        if (auto* client = static_cast<Client*>(r->handle->data)) client->server->drop(*client);
        delete r;
      }) != 0) {
    delete req;
    drop(c);
  }
}

void ControlServer::drop(Client& c) {
  // Never erased here: drop() is reached from send(), and a caller may be walking its own
  // list of clients (event subscribers, log followers) when a send fails. The client
  // only stops taking output now; it leaves the map, and the handler hears of it, in the
  // close callback, on a later turn of the loop where no such walk is under way.
  if (c.dropped) return;
  c.dropped = true;
  c.closing = true;
  stop_hangup_watch(c);
  auto* raw = reinterpret_cast<uv_handle_t*>(c.pipe);
  uv_read_stop(reinterpret_cast<uv_stream_t*>(c.pipe));
  if (!uv_is_closing(raw)) uv_close(raw, &ControlServer::on_closed);
}

void ControlServer::on_closed(uv_handle_t* handle) {
  auto* c = static_cast<Client*>(handle->data);
  delete reinterpret_cast<uv_pipe_t*>(handle);
  if (c == nullptr) return;  // closed with the server: already gone from its map
  ControlServer& server = *c->server;
  const ClientId id = c->id;
  c->notified = true;
  server.clients_.erase(id);
  server.handler_.on_disconnect(id);
}

}  // namespace vigil
