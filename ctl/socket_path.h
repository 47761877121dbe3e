// Which control socket vigilctl talks to: -s, else $VIGIL_SOCKET, else the config's
// supervisor.socket, else this user's default. The world (environment, files, the config
// reader) comes in through SocketSources so the order is unit-tested without any of it.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"
#include "loader.h"

namespace vigil::ctl {

struct SocketSources {
  std::function<std::optional<std::string>(std::string_view)> getenv;
  std::function<bool(const std::string&)> file_exists;
  // supervisor.socket of a config file, and nothing else of it (config::read_socket_setting).
  std::function<config::SocketSetting(const std::string&)> read_socket;
  std::function<std::string()> default_config_path;
  std::function<std::string()> default_socket;
};

// The real world: the process environment, the filesystem, the config reader.
SocketSources system_socket_sources();

struct ResolvedSocket {
  std::string path;
  // Where the path came from: "-s", "$VIGIL_SOCKET", "config <file>" or "default".
  std::string source;
  // Set when a config file was to say where the socket is and cannot: the lines for
  // stderr (its problems, then what to do). There is then no path: guessing another
  // socket could reach another daemon, whose jobs `stop all` would then stop.
  std::vector<std::string> errors;

  bool ok() const { return errors.empty(); }
};

ResolvedSocket resolve_socket(const GlobalOptions& options, const SocketSources& sources);

}  // namespace vigil::ctl
