// The control socket: a Unix stream server on the libuv loop speaking newline-delimited
// JSON. It owns the connections and their limits (request size, client count, output
// queued to a client that does not read, what all clients hold together, refusals when
// out of descriptors) and the peer-credential check; what a request means is the
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
#include "uv_handle.h"

namespace vigil {

inline constexpr std::size_t kMaxClients = 1024;
// Output queued to one client before it counts as not reading and is dropped.
inline constexpr std::size_t kMaxQueuedOutput = 8 * 1024 * 1024;
// What vigild holds for all its clients together: request lines not yet ended (each up to
// protocol::kMaxLine), output not yet written to them (each up to kMaxQueuedOutput) and
// what the handler keeps for them (ControlServer::charge). Beyond it the clients holding
// most are dropped: without it, 1024 clients could make vigild hold gigabytes.
inline constexpr std::size_t kMaxClientMemory = 64 * 1024 * 1024;
// Once this much of what clients held has gone, the free heap goes back to the system.
inline constexpr std::size_t kGiveBackAfter = 4 * 1024 * 1024;

class ControlServer;

// The bytes counted against kMaxClientMemory. Shared with the writes queued to clients,
// which give their bytes back when libuv is done with them, even after the server has gone.
struct ClientMemory {
  std::size_t held = 0;
  std::size_t peak = 0;             // the most held since memory was last given back
  ControlServer* server = nullptr;  // null once the server has gone
  void add(std::size_t bytes);
  void remove(std::size_t bytes);
};

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
  // Output the handler holds for a client outside the server (a follower's live log while
  // its tail is read) counts as the client's: charge() it when kept, refund() it when
  // handed to send() or dropped. Returns false when the client is gone, dropped now
  // because clients together hold too much.
  bool charge(ClientId client, std::size_t bytes);
  void refund(ClientId client, std::size_t bytes);
  // What clients hold now, in bytes (see kMaxClientMemory).
  std::size_t client_memory() const { return memory_->held; }

 private:
  friend struct ClientMemory;

  // The part of a client's bytes that is not in its queued writes: its unended request
  // line and its charges. Counted in ClientMemory while the client exists.
  class Holding {
   public:
    Holding() = default;
    Holding(Holding&& other) noexcept;
    Holding& operator=(Holding&&) = delete;
    ~Holding() { set(0); }
    void attach(std::shared_ptr<ClientMemory> memory) { memory_ = std::move(memory); }
    void set(std::size_t bytes);
    std::size_t bytes() const { return bytes_; }

   private:
    std::shared_ptr<ClientMemory> memory_;
    std::size_t bytes_ = 0;
  };

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
    std::size_t charged = 0;  // see charge()
    Holding holding{};
  };

  static void on_connection(uv_poll_t* poll, int status, int events);
  static void on_alloc(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  // Accepts every connection waiting. The socket is vigild's own, not a libuv listener:
  // out of descriptors, libuv accepts and closes connections without a word (its
  // "EMFILE trick") and never tells the server.
  void accept_pending();
  void accept_one(int fd);
  // Out of descriptors: the reserve descriptor makes room to accept one connection and
  // answer it `busy`. Returns 0 when it did, else the errno of that accept (EAGAIN: no
  // client waits; EMFILE: not even the reserve was there).
  int refuse_one(int accept_errno);
  // Accepting failed for want of resources: listen again in a moment instead of spinning
  // on a socket that stays readable.
  void pause_accepting(int accept_errno);
  // One warning per episode of accept failures, one note when it ends.
  void accept_trouble(int accept_errno);
  static void on_closed(uv_handle_t* handle);
  void handle_bytes(Client& c, std::string_view bytes);
  // A client whose input is closed but who is owed more goes once it hangs up for good.
  void watch_hangup(Client& c);
  void stop_hangup_watch(Client& c);
  // What a client holds: its queued output, its unended line, its charges.
  std::size_t held_by(const Client& c) const;
  // Makes room for `incoming` more bytes held for `client`: when clients would hold more
  // than kMaxClientMemory, the ones holding most are dropped until they do not. False
  // when `client` itself is gone.
  bool make_room(ClientId client, std::size_t incoming);
  void evict(Client& c, std::size_t held, std::size_t total);
  void give_back_soon();
  // Closes a client once what is queued to it has been written.
  void close_after_flush(Client& c);
  void drop(Client& c);
  bool peer_allowed(const Peer& p) const;

  uv_loop_t* loop_;
  Handler& handler_;
  Logger& log_;
  int listen_fd_ = -1;
  uv_poll_t* listener_ = nullptr;
  // An open descriptor held back for the moment all the others are taken (see refuse_one).
  int reserve_fd_ = -1;
  std::unique_ptr<Timer> accept_retry_;  // armed only while accepting is paused
  bool accept_failing_ = false;          // in an episode of accept failures
  std::uint64_t refused_busy_ = 0;       // clients refused with `busy` during it
  std::string path_;
  std::optional<gid_t> group_;
  std::map<ClientId, std::unique_ptr<Client>> clients_;
  std::shared_ptr<ClientMemory> memory_ = std::make_shared<ClientMemory>();
  std::unique_ptr<Timer> give_back_timer_;  // armed only after a big release
  bool give_back_armed_ = false;
  ClientId next_id_ = 1;
  char read_buf_[64 * 1024];
};

}  // namespace vigil
