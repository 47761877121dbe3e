// vigilctl's command line: the commands it knows, their help, and the pure translation of
// argv into an Invocation (what to do, with which protocol request) or a usage error.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "message.h"

namespace vigil::ctl {

// vigilctl's exit statuses (docs/vigilctl.md).
namespace exit_code {
inline constexpr int ok = 0;
inline constexpr int failed = 1;         // the daemon refused or the command failed; no connection
inline constexpr int usage = 2;          // unknown command or option, missing arguments
inline constexpr int not_running = 3;    // `status` listed a job that is not running
inline constexpr int interrupted = 130;  // Ctrl-C, as a shell reports a SIGINT death
}  // namespace exit_code

// One vigilctl command. `name` is what users type; `protocol` is the command on the wire
// (they differ only where the shell spelling uses '-': reopen-logs / reopen_logs).
struct CtlCommand {
  std::string_view name;
  std::string_view protocol;
  std::string_view usage;    // the arguments, as in "start [--no-wait] NAME...|all"
  std::string_view summary;  // one line, for `vigilctl --help`
  std::string_view details;  // the rest of `vigilctl COMMAND --help`
};
const std::vector<CtlCommand>& ctl_commands();
const CtlCommand* find_ctl_command(std::string_view name);

// Options that apply to every command.
struct GlobalOptions {
  std::optional<std::string> socket;  // -s, --socket
  std::optional<std::string> config;  // -c, --config
  std::optional<std::string> server_user;  // --server-user (see server_trust.h)
  bool json = false;                  // --json
  bool no_color = false;              // --no-color
};

struct Invocation {
  enum class Action {
    run,      // send `request` and render the answer
    help,     // print help_text(command) and exit 0
    version,  // print vigilctl's own version and exit 0
  };
  Action action = Action::run;
  GlobalOptions global;
  // The command as typed ("reopen-logs"); for help, the command asked about or "".
  std::string command;
  protocol::Request request;  // for Action::run
};

struct UsageError {
  std::string message;  // "unknown option '--x' for 'status'"
  std::string command;  // the command being parsed, for a more precise hint; or ""

  // The whole text for stderr: "vigilctl: <message>\nsee 'vigilctl --help'\n" (or
  // 'vigilctl <command> --help' when the error is about one command's arguments).
  std::string text() const;
};

// Parses the arguments after argv[0]. Global options may appear before or after the
// command; "--" ends the options, so that a job may be called "-x".
std::variant<Invocation, UsageError> parse_args(const std::vector<std::string>& args);

// `vigilctl --help` (command == "") or `vigilctl COMMAND --help`.
std::string help_text(std::string_view command);

}  // namespace vigil::ctl
