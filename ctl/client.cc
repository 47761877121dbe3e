// The client end of a control connection: a blocking Unix stream socket, framed by the
// protocol's own LineReader.
#include "client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace vigil::ctl {

std::string describe_connect_error(const std::string& path, int err) {
  std::string why;
  switch (err) {
    case ENOENT:
      why = "no such file (is vigild running?)";
      break;
    case ECONNREFUSED:
      // A socket file left behind by a daemon that died, or one not yet listening.
      why = "connection refused (is vigild running?)";
      break;
    case EACCES:
    case EPERM:
      why = "permission denied (run as the socket's owner, or set supervisor.socket_group)";
      break;
    case ENAMETOOLONG:
      why = "the path is too long for a Unix socket (at most " +
            std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes)";
      break;
    default:
      why = std::strerror(err);
  }
  return "cannot connect to " + path + ": " + why;
}

std::string describe_not_a_socket(const std::string& path, mode_t mode) {
  std::string what = "not a socket";
  if (S_ISREG(mode)) {
    what = "a regular file, not a socket";
  } else if (S_ISDIR(mode)) {
    what = "a directory, not a socket";
  } else if (S_ISFIFO(mode)) {
    what = "a FIFO, not a socket";
  } else if (S_ISCHR(mode) || S_ISBLK(mode)) {
    what = "a device, not a socket";
  }
  return "cannot connect to " + path + ": it is " + what;
}

std::variant<Connection, ConnectError> Connection::open(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    const int err = path.empty() ? ENOENT : ENAMETOOLONG;
    return ConnectError{err, describe_connect_error(path, err)};
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ConnectError{errno, describe_connect_error(path, errno)};
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    const int err = errno;
    ::close(fd);
    // connect() refuses a path that is not a socket as it refuses a socket nobody listens
    // on; "is vigild running?" would send the user looking in the wrong place.
    struct stat st {};
    if (err == ECONNREFUSED && ::stat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
      return ConnectError{err, describe_not_a_socket(path, st.st_mode)};
    }
    return ConnectError{err, describe_connect_error(path, err)};
  }
  return Connection(fd);
}

Connection::Connection(Connection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      reader_(std::move(other.reader_)),
      lines_(std::move(other.lines_)) {}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

std::variant<uid_t, int> Connection::peer_uid() const {
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return errno;
  return cred.uid;
}

std::optional<std::string> Connection::send(const protocol::Request& req) {
  const std::string line = protocol::encode_request(req);
  std::size_t done = 0;
  while (done < line.size()) {
    // MSG_NOSIGNAL: a daemon that hung up is an error to report, not a reason to die.
    const ssize_t n = ::send(fd_, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::string(std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  return std::nullopt;
}

Connection::Received Connection::receive(int watch_fd, std::span<const std::string_view> keep) {
  using Kind = Received::Kind;
  char buf[64 * 1024];
  while (lines_.empty()) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {watch_fd, 0, 0}};
    // With no events asked for, the watched fd reports only POLLERR or POLLHUP: for the
    // write end of a pipe, that its reader has gone.
    const int n = ::poll(fds, watch_fd >= 0 ? 2 : 1, -1);
    if (n < 0) {
      if (errno == EINTR) return {Kind::interrupted, {}, {}};
      return {Kind::error, {}, std::strerror(errno)};
    }
    if (watch_fd >= 0 && (fds[1].revents & (POLLERR | POLLHUP)) != 0) {
      return {Kind::output_closed, {}, {}};
    }
    if (fds[0].revents == 0) continue;

    const ssize_t got = ::read(fd_, buf, sizeof buf);
    if (got < 0) {
      if (errno == EINTR) return {Kind::interrupted, {}, {}};
      if (errno == ECONNRESET) return {Kind::closed, {}, {}};
      return {Kind::error, {}, std::strerror(errno)};
    }
    if (got == 0) return {Kind::closed, {}, {}};
    const auto status = reader_.feed(std::string_view(buf, static_cast<std::size_t>(got)),
                                     [this](std::string_view line) { lines_.emplace_back(line); });
    if (status == protocol::LineReader::Status::too_large) {
      return {Kind::error,
              {},
              "a response from vigild is larger than " +
                  std::to_string(kMaxResponseLine / (1024 * 1024)) + " MiB"};
    }
  }

  const std::string line = std::move(lines_.front());
  lines_.pop_front();
  auto parsed = protocol::parse_message(line, keep);
  if (auto* why = std::get_if<std::string>(&parsed)) {
    return {Kind::error, {}, "malformed response from vigild: " + *why};
  }
  return {Kind::message, std::get<protocol::Message>(std::move(parsed)), {}};
}

}  // namespace vigil::ctl
