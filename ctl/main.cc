// vigilctl: the command-line client of vigild. This file is only the process's edges
// (argv, signals, the environment, the terminal); the work is in args.cc, socket_path.cc,
// app.cc and render.cc.
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "app.h"
#include "args.h"
#include "client.h"
#include "render.h"
#include "runtime_dir.h"
#include "server_trust.h"
#include "socket_path.h"
#include "vigil_version.h"

namespace {

volatile std::sig_atomic_t g_interrupted = 0;

extern "C" void on_sigint(int) {
  g_interrupted = 1;
}

void write_fd(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::write(fd, s.data(), s.size());
    if (n <= 0) return;  // nowhere left to report to
    s.remove_prefix(static_cast<std::size_t>(n));
  }
}

int run(const std::vector<std::string>& args) {
  using namespace vigil::ctl;

  auto parsed = parse_args(args);
  if (auto* usage = std::get_if<UsageError>(&parsed)) {
    write_fd(2, usage->text());
    return exit_code::usage;
  }
  const Invocation& inv = std::get<Invocation>(parsed);
  switch (inv.action) {
    case Invocation::Action::help:
      write_fd(1, help_text(inv.command));
      return exit_code::ok;
    case Invocation::Action::version:
      write_fd(1, "vigilctl " VIGIL_VERSION "\n");
      return exit_code::ok;
    case Invocation::Action::run:
      break;
  }

  // Ctrl-C while waiting or following ends vigilctl quietly with 130. The handler is
  // installed without SA_RESTART so that a blocking poll() returns EINTR and the command
  // can finish its output before exiting.
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);

  const SocketSources sources = system_socket_sources();
  const UserLookup users = system_users();
  const auto trust = server_trust(inv.global, ::geteuid(), sources.getenv, users);
  if (const auto* why = std::get_if<std::string>(&trust)) {
    write_fd(2, "vigilctl: " + *why + "\n");
    return exit_code::usage;
  }
  const ResolvedSocket socket = resolve_socket(inv.global, sources);
  if (!socket.ok()) {
    for (const auto& line : socket.errors) write_fd(2, line + "\n");
    return exit_code::usage;
  }
  // A socket in a runtime folder that is not this user's own may have been put there.
  if (const std::string why =
          vigil::config::check_runtime_socket(socket.path, vigil::config::Environment::current());
      !why.empty()) {
    write_fd(2, "vigilctl: refusing to use " + socket.path + ": " + why + "\n");
    return exit_code::failed;
  }

  auto opened = Connection::open(socket.path);
  if (auto* e = std::get_if<ConnectError>(&opened)) {
    write_fd(2, "vigilctl: " + e->message + "\n");
    return exit_code::failed;
  }
  Connection& conn = std::get<Connection>(opened);
  // Nothing is sent before the other end is known to be a daemon this user trusts.
  const auto peer = conn.peer_uid();
  if (const int* err = std::get_if<int>(&peer)) {
    write_fd(2,
             "vigilctl: cannot tell who serves " + socket.path + ": " + std::strerror(*err) + "\n");
    return exit_code::failed;
  }
  if (const std::string why =
          check_server(std::get<uid_t>(peer), std::get<ServerTrust>(trust), socket.path, users);
      !why.empty()) {
    write_fd(2, "vigilctl: " + why + "\n");
    return exit_code::failed;
  }

  Terminal term;
  term.color = !inv.global.json && use_color(::isatty(1) == 1, inv.global.no_color, sources.getenv);
  term.interrupted = &g_interrupted;
  return run_command(inv, conn, term);
}

}  // namespace

int main(int argc, char** argv) {
  // A closed stdout (vigilctl logs -f web | head) must show up as EPIPE from write(),
  // which ends vigilctl quietly, instead of killing it with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    write_fd(2, std::string("vigilctl: internal error: ") + e.what() + "\n");
  } catch (...) {
    write_fd(2, "vigilctl: internal error\n");
  }
  return vigil::ctl::exit_code::failed;
}
