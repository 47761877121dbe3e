// vigilctl's command line: the command table, help texts, and argv -> Invocation.
// Everything here is pure, so every accepted and refused command line is unit-tested.
#include "args.h"

#include <algorithm>
#include <utility>

#include "values.h"

namespace vigil::ctl {

namespace {

using protocol::json;

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// At most nine digits, so the value always fits an int and no overflow check is needed;
// nobody asks for a billion log lines.
std::optional<int> small_number(std::string_view s) {
  if (!all_digits(s) || s.size() > 9) return std::nullopt;
  return std::stoi(std::string(s));
}

bool is_change_command(std::string_view name) {
  return name == "start" || name == "stop" || name == "restart";
}

}  // namespace

const std::vector<CtlCommand>& ctl_commands() {
  static const std::vector<CtlCommand> table = {
      {"status", "status", "status [NAME|GLOB...]",
       "show jobs; exit 3 if a listed job is not running",
       "Shows a table of jobs: NAME STATE PID UPTIME RESTARTS NOTE. Without names, every\n"
       "job; a glob such as 'web*' (quote it from the shell) selects the jobs it matches.\n"
       "A name or glob that matches no job is an error.\n"
       "\n"
       "Exit status: 0 if every listed job is running, 3 if one is not, 1 on error.\n"},
      {"start", "start", "start [--no-wait] NAME...|all", "start jobs; wait until they run or fail",
       "Starts the named jobs ('all' for every job; globs allowed) and waits until each\n"
       "has stayed up for its start_seconds, or has failed. A failure says what happened\n"
       "and which log to read, and the exit status is 1.\n"
       "\n"
       "options:\n"
       "      --no-wait   return as soon as vigild has acted, without waiting\n"},
      {"stop", "stop", "stop [--no-wait] NAME...|all", "stop jobs; wait until they are down",
       "Stops the named jobs ('all' for every job; globs allowed): each gets its stop\n"
       "signal, then SIGKILL after its stop_timeout. Waits until all are down.\n"
       "\n"
       "options:\n"
       "      --no-wait   return as soon as vigild has acted, without waiting\n"},
      {"restart", "restart", "restart [--no-wait] NAME...|all",
       "restart jobs; wait until they run or fail",
       "Stops the named jobs ('all' for every job; globs allowed), starts them again and\n"
       "waits until each runs or has failed.\n"
       "\n"
       "options:\n"
       "      --no-wait   return as soon as vigild has acted, without waiting\n"},
      {"signal", "signal", "signal SIG NAME...", "send a signal to jobs' processes",
       "Sends signal SIG to the process of each named job (to its whole process group\n"
       "when the job has kill_group). SIG is a name (HUP, SIGHUP, term) or a number.\n"
       "A job that has no process is an error.\n"},
      {"logs", "logs", "logs [-f] [-n N] [--stderr] NAME", "show the end of a job's log",
       "Prints the last lines of a job's stdout log (or its stderr log).\n"
       "\n"
       "options:\n"
       "  -f, --follow      keep printing new output until Ctrl-C\n"
       "  -n, --lines N     how many lines to show first (default 10; 0 for none)\n"
       "      --stderr      the stderr log instead of stdout's\n"},
      {"events", "events", "events", "follow job state changes until Ctrl-C",
       "Prints one line per job state change as it happens, until Ctrl-C:\n"
       "  2026-11-22T10:00:00.123Z web starting -> running (pid 123)\n"
       "With --json, the protocol's event objects, one per line.\n"},
      {"reload", "reload", "reload", "re-read the config; restart only what changed",
       "Makes vigild re-read its config. Added jobs start (if autostart), removed jobs\n"
       "stop, changed jobs restart; the others are not touched and keep their PIDs.\n"
       "A config with errors is not applied: each error is printed with its file, line\n"
       "and column, and the exit status is 1.\n"},
      {"reopen-logs", "reopen_logs", "reopen-logs", "reopen log files after rotation",
       "Makes vigild close and reopen its log files, for use after an external tool\n"
       "(logrotate) has moved them. Same as sending vigild SIGUSR1.\n"},
      {"shutdown", "shutdown", "shutdown", "stop all jobs and end vigild",
       "Makes vigild stop every job (all at once) and exit. Waits until\n"
       "vigild has gone, so the next command can start a new one.\n"},
      {"version", "version", "version", "show the versions of vigilctl and vigild",
       "Prints vigilctl's version, and the version and protocol version of the vigild\n"
       "it talks to. ('vigilctl --version' prints vigilctl's alone, without connecting.)\n"},
  };
  return table;
}

const CtlCommand* find_ctl_command(std::string_view name) {
  const auto& all = ctl_commands();
  const auto it =
      std::find_if(all.begin(), all.end(), [&](const CtlCommand& c) { return c.name == name; });
  return it == all.end() ? nullptr : &*it;
}

std::string UsageError::text() const {
  const std::string hint = command.empty() ? "vigilctl --help" : "vigilctl " + command + " --help";
  return "vigilctl: " + message + "\nsee '" + hint + "'\n";
}

std::variant<Invocation, UsageError> parse_args(const std::vector<std::string>& args) {
  Invocation inv;
  const CtlCommand* cmd = nullptr;
  bool help_command = false;  // "vigilctl help [COMMAND]"
  bool want_help = false;
  bool want_version = false;
  bool options_done = false;
  std::vector<std::string> positional;

  // The options of single commands.
  bool no_wait = false;
  bool follow = false;
  bool use_stderr = false;
  std::optional<int> lines;

  auto usage = [&](std::string message) {
    return UsageError{std::move(message), cmd != nullptr ? std::string(cmd->name) : ""};
  };

  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!options_done && arg == "--") {
      options_done = true;
      continue;
    }
    // A lone "-" is an operand, as in most tools.
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      if (cmd == nullptr && !help_command) {
        if (arg == "help") {
          help_command = true;
          continue;
        }
        cmd = find_ctl_command(arg);
        if (cmd == nullptr) {
          std::vector<std::string> names;
          for (const auto& c : ctl_commands()) names.emplace_back(c.name);
          std::string msg = "unknown command '" + arg + "'";
          if (auto near = config::did_you_mean(arg, names))
            msg += " (did you mean '" + *near + "'?)";
          return usage(std::move(msg));
        }
      } else {
        positional.push_back(arg);
      }
      continue;
    }

    // Split "--name=value" and "-xVALUE" into the option and its attached value.
    std::string name = arg;
    std::optional<std::string> attached;
    if (arg.rfind("--", 0) == 0) {
      if (const auto eq = arg.find('='); eq != std::string::npos) {
        name = arg.substr(0, eq);
        attached = arg.substr(eq + 1);
      }
    } else if (arg.size() > 2) {
      name = arg.substr(0, 2);
      attached = arg.substr(2);
    }

    // The value of an option that takes one: attached, or the next argument.
    auto value = [&](std::string_view what) -> std::variant<std::string, UsageError> {
      std::string v;
      if (attached) {
        v = *attached;
      } else if (i + 1 < args.size()) {
        v = args[++i];
      } else {
        return usage("option '" + name + "' needs " + std::string(what));
      }
      if (v.empty()) return usage("option '" + name + "' needs " + std::string(what));
      return v;
    };
    auto flag = [&](bool& target) -> std::optional<UsageError> {
      if (attached) return usage("option '" + name + "' takes no value");
      target = true;
      return std::nullopt;
    };

    std::optional<UsageError> problem;
    if (name == "-s" || name == "--socket" || name == "-c" || name == "--config") {
      const bool socket = name == "-s" || name == "--socket";
      auto v = value(socket ? "a socket path" : "a config file");
      if (auto* e = std::get_if<UsageError>(&v)) return *e;
      (socket ? inv.global.socket : inv.global.config) = std::get<std::string>(v);
    } else if (name == "--server-user") {
      auto v = value("a user name or uid");
      if (auto* e = std::get_if<UsageError>(&v)) return *e;
      inv.global.server_user = std::get<std::string>(v);
    } else if (name == "--json") {
      problem = flag(inv.global.json);
    } else if (name == "--no-color") {
      problem = flag(inv.global.no_color);
    } else if (name == "-h" || name == "--help") {
      problem = flag(want_help);
    } else if (name == "--version") {
      problem = flag(want_version);
    } else if (cmd != nullptr && is_change_command(cmd->name) && name == "--no-wait") {
      problem = flag(no_wait);
    } else if (cmd != nullptr && cmd->name == "logs" && (name == "-f" || name == "--follow")) {
      problem = flag(follow);
    } else if (cmd != nullptr && cmd->name == "logs" && name == "--stderr") {
      problem = flag(use_stderr);
    } else if (cmd != nullptr && cmd->name == "logs" && (name == "-n" || name == "--lines")) {
      auto v = value("a number of lines");
      if (auto* e = std::get_if<UsageError>(&v)) return *e;
      lines = small_number(std::get<std::string>(v));
      if (!lines) {
        return usage("option '" + name + "' needs a number of lines (0 or more), not '" +
                     std::get<std::string>(v) + "'");
      }
    } else if (cmd != nullptr) {
      return usage("unknown option '" + arg + "' for '" + std::string(cmd->name) + "'");
    } else {
      return usage("unknown option '" + arg + "'");
    }
    if (problem) return *problem;
  }

  if (help_command) {
    inv.action = Invocation::Action::help;
    if (positional.size() > 1) return usage("'help' takes at most one command");
    if (!positional.empty()) {
      if (find_ctl_command(positional[0]) == nullptr) {
        return usage("unknown command '" + positional[0] + "'");
      }
      inv.command = positional[0];
    }
    return inv;
  }
  if (want_help) {
    inv.action = Invocation::Action::help;
    if (cmd != nullptr) inv.command = cmd->name;
    return inv;
  }
  if (want_version) {
    inv.action = Invocation::Action::version;
    return inv;
  }
  if (cmd == nullptr) return usage("no command given");

  inv.command = cmd->name;
  inv.request.id = 1;
  inv.request.cmd = cmd->protocol;
  json& a = inv.request.args;
  a = json::object();
  const std::string_view c = cmd->name;

  if (c == "status") {
    if (!positional.empty()) a["names"] = positional;
  } else if (is_change_command(c)) {
    if (positional.empty()) return usage("'" + std::string(c) + "' needs job names, or 'all'");
    a["names"] = positional;
    if (no_wait) a["no_wait"] = true;
  } else if (c == "signal") {
    if (positional.empty()) return usage("'signal' needs a signal and job names");
    const std::string& sig = positional[0];
    // Checked here with the table vigild uses, so that a typo is a usage error said in
    // plain words, before anything is sent.
    const config::Parsed<int> signo = config::parse_signal(sig);
    if (const auto* e = std::get_if<config::ParseError>(&signo)) return usage(e->message);
    if (positional.size() < 2) return usage("'signal' needs job names after the signal");
    if (all_digits(sig)) {
      a["signal"] = std::get<int>(signo);
    } else {
      a["signal"] = sig;
    }
    a["names"] = std::vector<std::string>(positional.begin() + 1, positional.end());
  } else if (c == "logs") {
    if (positional.empty()) return usage("'logs' needs a job name");
    if (positional.size() > 1) return usage("'logs' takes one job name");
    a["name"] = positional[0];
    a["stream"] = use_stderr ? "stderr" : "stdout";
    a["lines"] = lines.value_or(10);
    if (follow) a["follow"] = true;
  } else if (!positional.empty()) {
    // events, reload, reopen-logs, shutdown, version.
    return usage("'" + std::string(c) + "' takes no arguments");
  }
  return inv;
}

std::string help_text(std::string_view command) {
  if (const CtlCommand* cmd = find_ctl_command(command)) {
    return "usage: vigilctl [-s SOCKET] [-c FILE] [--json] " + std::string(cmd->usage) + "\n\n" +
           std::string(cmd->details) + "\nThe global options are described in 'vigilctl --help'.\n";
  }

  std::size_t width = 0;
  for (const auto& c : ctl_commands()) width = std::max(width, c.usage.size());
  std::string commands;
  for (const auto& c : ctl_commands()) {
    commands += "  " + std::string(c.usage) + std::string(width - c.usage.size() + 2, ' ') +
                std::string(c.summary) + "\n";
  }
  return "usage: vigilctl [-s SOCKET] [-c FILE] [--json] [--no-color] COMMAND [ARGS]\n"
         "\n"
         "Controls vigild, the vigil process supervisor, through its control socket.\n"
         "\n"
         "commands:\n" +
         commands +
         "\n"
         "options:\n"
         "  -s, --socket SOCKET     the control socket; default: $VIGIL_SOCKET, else the\n"
         "                          config's supervisor.socket, else this user's default\n"
         "  -c, --config FILE       the config file to read supervisor.socket from\n"
         "      --server-user USER  trust a vigild running as USER (default: only root and\n"
         "                          you; also $VIGIL_SERVER_USER)\n"
         "      --json              print the protocol's JSON results, for scripts\n"
         "      --no-color          no colours (also off when NO_COLOR is set or not a tty)\n"
         "  -h, --help              this help; 'vigilctl COMMAND --help' for one command\n"
         "      --version           print vigilctl's version\n"
         "\n"
         "exit status: 0 ok, 1 the command failed, 2 usage error,\n"
         "             3 'status' listed a job that is not running\n";
}

}  // namespace vigil::ctl
