// Which control socket vigilctl talks to: -s, else $VIGIL_SOCKET, else the config's
// supervisor.socket, else this user's default. The world (environment, files, the config
// loader) comes in through SocketSources so the order is unit-tested without any of it.
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
  std::function<config::LoadResult(const std::string&)> load_config;
  std::function<std::string()> default_config_path;
  std::function<std::string()> default_socket;
};

// The real world: the process environment, the filesystem, config::load.
SocketSources system_socket_sources();

struct ResolvedSocket {
  std::string path;
  // Where the path came from: "-s", "$VIGIL_SOCKET", "config <file>" or "default".
  std::string source;
  // Lines for stderr ("vigilctl: warning: ..."), e.g. a config that failed to load.
  std::vector<std::string> warnings;
};

ResolvedSocket resolve_socket(const GlobalOptions& options, const SocketSources& sources);

}  // namespace vigil::ctl
