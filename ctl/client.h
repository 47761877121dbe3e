// vigilctl's side of a control connection: connect to the Unix socket, send a request,
// and read response and event lines, all with blocking I/O (the client has nothing else
// to do while it waits, so it needs no event loop).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "framing.h"
#include "message.h"

namespace vigil::ctl {

// Responses are trusted more than requests (they come from the daemon), but a `logs`
// answer can legitimately be large; this only stops a runaway line from eating memory.
inline constexpr std::size_t kMaxResponseLine = 64 * 1024 * 1024;

// "cannot connect to /run/vigil/vigil.sock: no such file (is vigild running?)", with a
// hint for the errors people meet: no daemon, a stale socket, a socket they may not use.
std::string describe_connect_error(const std::string& path, int err);
// "cannot connect to /tmp/x: it is a regular file, not a socket", for a path whose file
// type (st_mode) is not a socket.
std::string describe_not_a_socket(const std::string& path, mode_t mode);

struct ConnectError {
  int err = 0;
  std::string message;  // describe_connect_error()
};

class Connection {
 public:
  // Connects to the socket at `path`.
  static std::variant<Connection, ConnectError> open(const std::string& path);

  // Takes ownership of a connected stream socket (tests use one end of a socketpair).
  explicit Connection(int fd) : fd_(fd) {}
  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&&) = delete;
  Connection(const Connection&) = delete;
  ~Connection();

  // The effective uid of the process that listens on the other end (SO_PEERCRED), or the
  // errno of the failure.
  std::variant<uid_t, int> peer_uid() const;

  // Sends one request line. Returns why it failed, if it did.
  std::optional<std::string> send(const protocol::Request& req);

  struct Received {
    enum class Kind {
      message,        // `message` holds the next response or event
      closed,         // the daemon closed the connection
      interrupted,    // a signal arrived (the caller decides whether that means stop)
      output_closed,  // the watched fd's reader went away (stdout piped to `head`)
      error,          // `error` says what went wrong (I/O, or a malformed line)
    };
    Kind kind = Kind::error;
    protocol::Message message;
    std::string error;
  };

  // Blocks until the next message. When `watch_fd` is given (a pipe on stdout while
  // following a stream), also returns output_closed as soon as that pipe's reader is
  // gone, instead of waiting for the next line to fail writing. A non-empty `keep`
  // prunes the objects of an array result to those members (protocol::parse_message).
  Received receive(int watch_fd = -1, std::span<const std::string_view> keep = {});

 private:
  int fd_;
  protocol::LineReader reader_{kMaxResponseLine};
  std::deque<std::string> lines_;  // complete lines read but not yet returned
};

}  // namespace vigil::ctl
