// Resolution of the control socket's path, in the documented order of precedence.
#include "socket_path.h"

#include <sys/stat.h>

#include <cstdlib>

namespace vigil::ctl {

SocketSources system_socket_sources() {
  config::Environment env = config::Environment::current();
  // vigilctl reads the config only for supervisor.socket. Whether the accounts named by
  // jobs exist on this machine, for this user, is no reason to miss the socket.
  env.check_accounts = false;
  SocketSources s;
  s.getenv = env.getenv;
  s.file_exists = [](const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  };
  s.load_config = [env](const std::string& path) { return config::load(path, env); };
  s.default_config_path = [env] { return config::default_config_path(env); };
  s.default_socket = [env] { return config::default_supervisor(env).socket; };
  return s;
}

ResolvedSocket resolve_socket(const GlobalOptions& options, const SocketSources& sources) {
  if (options.socket && !options.socket->empty()) return {*options.socket, "-s", {}};
  if (auto env = sources.getenv("VIGIL_SOCKET"); env && !env->empty()) {
    return {*env, "$VIGIL_SOCKET", {}};
  }

  std::vector<std::string> warnings;
  // A config named with -c is read even if it seems missing, so that the user hears why
  // it was not used; the default config is read only when there is one.
  std::optional<std::string> file = options.config;
  if (!file) {
    std::string path = sources.default_config_path();
    if (!path.empty() && sources.file_exists(path)) file = std::move(path);
  }
  if (file) {
    config::LoadResult loaded = sources.load_config(*file);
    if (loaded.ok() && !loaded.config->supervisor.socket.empty()) {
      return {loaded.config->supervisor.socket, "config " + *file, {}};
    }
    std::string why = "no supervisor.socket in it";
    if (!loaded.errors.empty()) {
      why = loaded.errors.front().str();
      if (loaded.errors.size() > 1) {
        why += " (and " + std::to_string(loaded.errors.size() - 1) + " more)";
      }
    }
    warnings.push_back("vigilctl: warning: cannot use the socket of " + *file + ": " + why +
                       "; trying the default socket");
  }
  return {sources.default_socket(), "default", std::move(warnings)};
}

}  // namespace vigil::ctl
