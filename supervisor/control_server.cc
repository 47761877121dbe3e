// The control socket server.
#include "control_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "accounts.h"
#include "fsutil.h"
#include "uv_handle.h"

namespace vigil {

namespace {

using protocol::json;

struct WriteReq {
  uv_write_t req;
  std::string data;
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

}  // namespace

ControlServer::ControlServer(uv_loop_t* loop, Handler& handler, Logger& log)
    : loop_(loop), handler_(handler), log_(log) {}

ControlServer::~ControlServer() { close(); }

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

  listener_ = new_handle<uv_pipe_t>(this);
  uv_pipe_init(loop_, listener_, 0);
  // The socket is born owner-only (the umask applies to bind); group access is added
  // only after the group is set, so it is never more open than configured.
  const mode_t old = ::umask(0177);
  int rc = uv_pipe_bind(listener_, path_.c_str());
  ::umask(old);
  if (rc != 0) {
    close_handle(listener_);
    return "cannot bind " + path_ + ": " + uv_strerror(rc);
  }
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
  rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener_), SOMAXCONN, &ControlServer::on_connection);
  if (rc != 0) {
    close();
    return "cannot listen on " + path_ + ": " + uv_strerror(rc);
  }
  return {};
}

void ControlServer::close() {
  // The socket goes first: a client that sees its connection close can count on the
  // path being free for the next daemon.
  if (listener_ != nullptr) {
    close_handle(listener_);
    ::unlink(path_.c_str());
  }
  while (!clients_.empty()) drop(*clients_.begin()->second);
}

bool ControlServer::peer_allowed(const Peer& p) const {
  if (p.uid == 0 || p.uid == ::geteuid()) return true;
  return group_ && accounts::member_of(p.uid, p.gid, *group_);
}

void ControlServer::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<ControlServer*>(server->data);
  if (self == nullptr) return;
  if (status < 0) {
    // Typically EMFILE: report it and keep serving those already connected.
    self->log_.warn(std::string("control socket: cannot accept: ") + uv_strerror(status));
    return;
  }
  self->accept_one();
}

void ControlServer::accept_one() {
  auto* pipe = new_handle<uv_pipe_t>(nullptr);
  uv_pipe_init(loop_, pipe, 0);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(listener_),
                reinterpret_cast<uv_stream_t*>(pipe)) != 0) {
    close_handle(pipe);
    return;
  }
  Peer peer;
  uv_os_fd_t fd = -1;
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(pipe), &fd) != 0 ||
      ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    close_handle(pipe);
    return;
  }
  peer = {cred.pid, cred.uid, cred.gid};

  auto client = std::make_unique<Client>(
      Client{this, next_id_++, pipe, peer, protocol::LineReader{}, false, false});
  pipe->data = client.get();
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
    if (!c->server->handler_.on_input_closed(c->id)) c->server->close_after_flush(*c);
    return;
  }
  if (nread < 0) {
    c->server->drop(*c);
    return;
  }
  if (nread > 0) c->server->handle_bytes(*c, std::string_view(buf->base, nread));
}

void ControlServer::handle_bytes(Client& c, std::string_view bytes) {
  // Lines are taken out first and handled after: handling one may drop the client (its
  // replies piling up), and the reader must not be in the middle of a feed then.
  std::vector<std::string> lines;
  auto status = c.reader.feed(bytes, [&](std::string_view line) { lines.emplace_back(line); });
  const ClientId id = c.id;
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
  if (it == clients_.end()) return;
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
      auto* w = new WriteReq{{}, line.substr(n)};
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
  auto* w = new WriteReq{{}, line};
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
  if (it != clients_.end()) {
    log_.warn("control socket: dropping client " + std::to_string(id) +
              ": it is not reading its replies");
    drop(*it->second);
  }
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
  struct ShutdownReq {
    uv_shutdown_t req;
    ControlServer* server;
    ClientId id;
  };
  auto* s = new ShutdownReq{{}, this, c.id};
  if (uv_shutdown(&s->req, stream, [](uv_shutdown_t* r, int) {
        auto* s = reinterpret_cast<ShutdownReq*>(r);
        // The server may be gone by now (closing at exit drops clients first).
        if (s->server != nullptr) {
          auto it = s->server->clients_.find(s->id);
          if (it != s->server->clients_.end()) s->server->drop(*it->second);
        }
        delete s;
      }) != 0) {
    delete s;
    drop(c);
  }
}

void ControlServer::drop(Client& c) {
  const ClientId id = c.id;
  close_handle(c.pipe);
  clients_.erase(id);
  handler_.on_disconnect(id);
}

}  // namespace vigil
