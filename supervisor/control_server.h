// The control socket: a libuv pipe server speaking newline-delimited JSON. It owns the
// connections and their limits (request size, client count, output queued to a client
// that does not read) and the peer-credential check; what a request means is the
// Handler's business.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "framing.h"
#include "logger.h"
#include "message.h"
#include "spec.h"

namespace vigil {

inline constexpr std::size_t kMaxClients = 1024;
// Output queued to one client before it counts as not reading and is dropped.
inline constexpr std::size_t kMaxQueuedOutput = 8 * 1024 * 1024;

struct Peer {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

class ControlServer {
 public:
  using ClientId = std::uint64_t;

  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void on_request(ClientId client, const Peer& peer, protocol::Request req) = 0;
    virtual void on_disconnect(ClientId client) = 0;
    // The client will send nothing more (it shut down its side, as `echo ... | socat`
    // does). Return true while something is still owed to it (a reply it waits for, a
    // stream it follows): the connection stays open until close_when_done().
    virtual bool on_input_closed(ClientId client) = 0;
  };

  ControlServer(uv_loop_t* loop, Handler& handler, Logger& log);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds and listens on the configured socket with its mode and group, replacing the
  // socket of a dead daemon but never a live one. Returns "" or the reason.
  std::string listen(const config::SupervisorSpec& spec);
  // Stops accepting, closes every client and removes the socket file.
  void close();

  // Queues one line to a client; a client that lets too much pile up, or whose socket
  // fails, is dropped. Never calls back into the Handler and never changes which clients
  // exist before it returns: a drop takes effect on a later turn of the loop (then
  // Handler::on_disconnect), so a caller may send to each of a list of clients while
  // walking that list.
  void send(ClientId client, const std::string& line);
  void send_result(ClientId client, const protocol::json& id, const protocol::json& result);
  void send_error(ClientId client, const protocol::json& id, const protocol::Error& err);
  bool connected(ClientId client) const {
    auto it = clients_.find(client);
    return it != clients_.end() && !it->second->dropped;
  }
  // Closes a client whose input is closed, once what is queued to it is written.
  void close_when_done(ClientId client);
  // Drops a client (it let too much output pile up): it takes no more output from now
  // on, and goes as send() describes.
  void disconnect(ClientId client);
  bool input_closed(ClientId client) const;
  std::size_t client_count() const { return clients_.size(); }

 private:
  struct Client {
    ControlServer* server;
    ClientId id;
    uv_pipe_t* pipe;
    Peer peer;
    protocol::LineReader reader;
    bool closing = false;
    bool input_closed = false;
    // Being closed: takes no more output, and leaves clients_ in on_closed().
    bool dropped = false;
    bool notified = false;  // the handler has heard of its going
    // Input closed with something still owed: watches for the peer's full hang-up.
    uv_poll_t* hangup = nullptr;
    int hangup_fd = -1;
  };

  static void on_connection(uv_stream_t* server, int status);
  static void on_alloc(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_closed(uv_handle_t* handle);
  void accept_one();
  void handle_bytes(Client& c, std::string_view bytes);
  // A client whose input is closed but who is owed more goes once it hangs up for good.
  void watch_hangup(Client& c);
  void stop_hangup_watch(Client& c);
  // Closes a client once what is queued to it has been written.
  void close_after_flush(Client& c);
  void drop(Client& c);
  bool peer_allowed(const Peer& p) const;

  uv_loop_t* loop_;
  Handler& handler_;
  Logger& log_;
  uv_pipe_t* listener_ = nullptr;
  std::string path_;
  std::optional<gid_t> group_;
  std::map<ClientId, std::unique_ptr<Client>> clients_;
  ClientId next_id_ = 1;
  char read_buf_[64 * 1024];
};

}  // namespace vigil
