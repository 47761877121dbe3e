// Readers for the sections of a config file: `supervisor:`, one job under `jobs:`, and
// `include:`. Each reads what it can and reports the rest. Internal to config/.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "reader.h"
#include "spec.h"

namespace vigil::config::internal {

// One include pattern, ${VAR}-expanded, with where it was written.
struct IncludeRef {
  std::string pattern;
  Location at;
  std::string path;  // its key path, e.g. "supervisor.include[1]"
};

// A job as read from its file, before the defaults that depend on the whole config
// (the log folder) are filled in.
struct JobDraft {
  JobSpec spec;
  bool command_given = false;
  bool stdout_given = false;
  bool stderr_given = false;
  Location stdout_at;  // where each stream's value is written, when it is
  Location stderr_at;
};

// Where the supervisor's files are set in the config, for the settings that are.
struct SupervisorSites {
  std::optional<Location> socket;
  std::optional<Location> pidfile;
  std::optional<Location> log;
  std::optional<Location> log_dir;
};

// Reads `supervisor:` into `spec` (which holds the defaults) and collects its includes.
void read_supervisor(Reader& reader, const Entry& section, SupervisorSpec& spec,
                     SupervisorSites& sites, std::vector<IncludeRef>& includes);

// Reads supervisor.socket of a main file and nothing else (no other key is looked at, so
// no other key can fail): std::nullopt when it is not set, or when it cannot be read
// (then reported).
std::optional<std::string> read_socket_only(Reader& reader);

// Reads one entry of `jobs:`.
JobDraft read_job(Reader& reader, const Entry& entry);

// Reads an `include:` value: one pattern or a list. `written` receives the patterns as
// written, for SupervisorSpec::include.
std::vector<IncludeRef> read_include(Reader& reader, const Entry& entry,
                                     std::vector<std::string>* written);

// Fills in the key names of the sections read here, and the restart policies, for
// config::known_keys(): the names in the tables these readers dispatch from.
void section_keys(KnownKeys& out);

}  // namespace vigil::config::internal
