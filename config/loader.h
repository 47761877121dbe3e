// Loads vigil.yaml (and its includes) into a Config, or reports every problem found.
// Never throws; never returns a half-loaded config.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spec.h"

namespace vigil::config {

// What the loader needs from the world besides the files themselves. Tests pass their own.
struct Environment {
  // Looks up an environment variable (for ${VAR} expansion and XDG defaults).
  std::function<std::optional<std::string>(std::string_view)> getenv;
  uid_t uid = 0;  // the daemon's effective uid: root gets the system defaults
  // Whether user/group names are checked against the system databases. Tests of pure
  // parsing turn it off.
  bool check_accounts = true;

  // The running process's environment and euid.
  static Environment current();
};

struct LoadResult {
  std::optional<Config> config;  // set only when errors is empty
  std::vector<Diagnostic> errors;

  bool ok() const { return config.has_value(); }
};

// Loads the main config file at `path` (made absolute against the current directory).
LoadResult load(const std::string& path, const Environment& env);

// Parses a config from text, as if read from `path` (used by tests and the fuzzer).
// Includes are resolved relative to dirname(path) on the real filesystem.
LoadResult load_from_string(const std::string& text, const std::string& path,
                            const Environment& env);

// supervisor.socket of the main config file at `path`, read as load() reads it (${VAR}
// expanded, made absolute against the file's folder), and nothing else: the file must be
// YAML, but no other key is checked, so that a job's unset variable or unknown user on
// this machine cannot hide where the daemon listens. For vigilctl.
struct SocketSetting {
  std::optional<std::string> socket;  // not set when the file does not name one
  std::vector<Diagnostic> errors;     // the file or the setting cannot be read

  bool ok() const { return errors.empty(); }
};
SocketSetting read_socket_setting(const std::string& path, const Environment& env);

// The names the loader accepts, each in the order of the table it reads them from, so
// that what must agree with the loader (the man page vigil.yaml(5), checked by
// tests/unit/docs_drift_test.cc) can ask it rather than repeat it.
struct KnownKeys {
  std::vector<std::string> main;              // the top level of the main file
  std::vector<std::string> included;          // the top level of an included file
  std::vector<std::string> supervisor;        // the keys of supervisor:
  std::vector<std::string> job;               // the keys of each job under jobs:
  std::vector<std::string> backoff;           // the keys of a job's backoff:
  std::vector<std::string> restart_policies;  // the values of a job's restart:
};

KnownKeys known_keys();

// The config file used when none is given: /etc/vigil/vigil.yaml for root, else
// $XDG_CONFIG_HOME/vigil/vigil.yaml (~/.config/vigil/vigil.yaml).
std::string default_config_path(const Environment& env);

// The defaults for the supervisor section (root: /run/vigil, /var/log/vigil; others:
// $XDG_RUNTIME_DIR or /tmp/vigil-UID, $XDG_STATE_HOME/vigil or ~/.local/state/vigil).
SupervisorSpec default_supervisor(const Environment& env);

}  // namespace vigil::config
