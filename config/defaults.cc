// Where vigil puts things when the config does not say: the system locations for root,
// the XDG base directories for everyone else. Also the real process's Environment.
#include <unistd.h>

#include <cstdlib>

#include "internal.h"
#include "loader.h"
#include "runtime_dir.h"

namespace vigil::config {
namespace {

// An XDG variable counts only when it is set to an absolute path; the base directory
// specification says relative values are to be ignored.
std::optional<std::string> absolute_var(const Environment& env, std::string_view name) {
  if (!env.getenv) return std::nullopt;
  std::optional<std::string> value = env.getenv(name);
  if (!value || value->empty() || value->front() != '/') return std::nullopt;
  return internal::resolve_path("/", *value);
}

std::optional<std::string> home(const Environment& env) {
  if (auto value = absolute_var(env, "HOME")) return value;
  // A daemon started by a service manager may have no $HOME; the passwd entry still knows.
  if (auto value = internal::home_of(env.uid); value && !value->empty() && value->front() == '/') {
    return internal::resolve_path("/", *value);
  }
  return std::nullopt;
}

std::string user_runtime_dir(const Environment& env) {
  if (auto dir = absolute_var(env, "XDG_RUNTIME_DIR")) return *dir;
  return "/tmp/vigil-" + std::to_string(env.uid);
}

std::string state_dir(const Environment& env) {
  if (auto dir = absolute_var(env, "XDG_STATE_HOME")) return internal::resolve_path(*dir, "vigil");
  if (auto dir = home(env)) return internal::resolve_path(*dir, ".local/state/vigil");
  // Without any home the logs go beside the socket rather than into a shared folder.
  return user_runtime_dir(env);
}

}  // namespace

Environment Environment::current() {
  Environment env;
  env.getenv = [](std::string_view name) -> std::optional<std::string> {
    const char* value = ::getenv(std::string(name).c_str());
    if (!value) return std::nullopt;
    return std::string(value);
  };
  env.uid = geteuid();
  env.check_accounts = true;
  return env;
}

SupervisorSpec default_supervisor(const Environment& env) {
  SupervisorSpec spec;
  if (env.uid == 0) {
    spec.socket = "/run/vigil/vigil.sock";
    spec.pidfile = "/run/vigil/vigild.pid";
    spec.log = "/var/log/vigil/vigild.log";
    spec.log_dir = "/var/log/vigil";
    return spec;
  }
  const std::string runtime = user_runtime_dir(env);
  const std::string state = state_dir(env);
  spec.socket = internal::resolve_path(runtime, "vigil.sock");
  spec.pidfile = internal::resolve_path(runtime, "vigild.pid");
  spec.log = internal::resolve_path(state, "vigild.log");
  spec.log_dir = state;
  return spec;
}

std::optional<std::string> runtime_dir(const Environment& env) {
  if (env.uid == 0) return std::nullopt;
  return user_runtime_dir(env);
}

std::string default_config_path(const Environment& env) {
  if (env.uid == 0) return "/etc/vigil/vigil.yaml";
  if (auto dir = absolute_var(env, "XDG_CONFIG_HOME")) {
    return internal::resolve_path(*dir, "vigil/vigil.yaml");
  }
  if (auto dir = home(env)) return internal::resolve_path(*dir, ".config/vigil/vigil.yaml");
  return "/etc/vigil/vigil.yaml";
}

}  // namespace vigil::config
