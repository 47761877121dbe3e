// Resolution of the control socket's path, in the documented order of precedence.
#include "socket_path.h"

#include <sys/stat.h>

#include <cstdlib>

namespace vigil::ctl {

SocketSources system_socket_sources() {
  const config::Environment env = config::Environment::current();
  SocketSources s;
  s.getenv = env.getenv;
  s.file_exists = [](const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  };
  s.read_socket = [env](const std::string& path) { return config::read_socket_setting(path, env); };
  s.default_config_path = [env] { return config::default_config_path(env); };
  s.default_socket = [env] { return config::default_supervisor(env).socket; };
  return s;
}

ResolvedSocket resolve_socket(const GlobalOptions& options, const SocketSources& sources) {
  if (options.socket && !options.socket->empty()) return {*options.socket, "-s", {}};
  if (auto env = sources.getenv("VIGIL_SOCKET"); env && !env->empty()) {
    return {*env, "$VIGIL_SOCKET", {}};
  }

  // A config named with -c is read even if it seems missing, so that the user hears why
  // it cannot be used; the default config is read only when there is one.
  std::optional<std::string> file = options.config;
  if (!file) {
    std::string path = sources.default_config_path();
    if (!path.empty() && sources.file_exists(path)) file = std::move(path);
  }
  if (!file) return {sources.default_socket(), "default", {}};

  config::SocketSetting setting = sources.read_socket(*file);
  if (!setting.ok()) {
    ResolvedSocket failed;
    for (const auto& d : setting.errors) failed.errors.push_back(d.str());
    failed.errors.push_back("vigilctl: cannot tell which socket " + *file +
                            " names: fix it, or name the socket with -s or $VIGIL_SOCKET");
    return failed;
  }
  if (setting.socket) return {*setting.socket, "config " + *file, {}};
  // The config leaves the socket to the default, as vigild does.
  return {sources.default_socket(), "default", {}};
}

}  // namespace vigil::ctl
