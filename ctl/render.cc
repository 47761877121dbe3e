// Rendering of the daemon's answers for people. Every function takes the protocol's JSON
// as it comes and tolerates missing or ill-typed fields (printing "-" or nothing), so a
// newer daemon that adds or drops a field never makes vigilctl throw.
#include "render.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace vigil::ctl {

namespace {

// JSON text of a value that is not the string it should be; never throws.
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

const json& field(const json& j, std::string_view key) {
  static const json null_value;
  if (!j.is_object()) return null_value;
  const auto it = j.find(key);
  return it == j.end() ? null_value : *it;
}

std::string text(const json& j, std::string_view key) {
  const json& v = field(j, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

// An integer field as text, or `absent` when it is not an integer.
std::string integer(const json& j, std::string_view key, std::string_view absent) {
  const json& v = field(j, key);
  // As the daemon wrote it: no narrowing to a C integer that could wrap.
  if (v.is_number_integer()) return dump(v);
  return std::string(absent);
}

std::string join(const json& names, std::string_view sep) {
  std::string out;
  if (!names.is_array()) return out;
  for (const auto& n : names) {
    if (!out.empty()) out += sep;
    out += n.is_string() ? n.get<std::string>() : dump(n);
  }
  return out;
}

std::string rstrip(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// Green for the state everyone wants, yellow for states on their way somewhere, red for
// states that need a person. "stopped" stays plain: it is what was asked for.
std::string_view state_color(std::string_view state) {
  if (state == "running") return "\x1b[32m";
  if (state == "starting" || state == "stopping" || state == "backoff") return "\x1b[33m";
  if (state == "fatal") return "\x1b[1;31m";
  if (state == "exited") return "\x1b[31m";
  return "";
}
constexpr std::string_view kReset = "\x1b[0m";

std::string pad(std::string_view s, std::size_t width) {
  std::string out(s);
  if (out.size() < width) out.append(width - out.size(), ' ');
  return out;
}

}  // namespace

bool use_color(bool is_tty, bool no_color_flag,
               const std::function<std::optional<std::string>(std::string_view)>& getenv) {
  if (!is_tty || no_color_flag) return false;
  if (auto v = getenv("NO_COLOR"); v && !v->empty()) return false;
  if (auto term = getenv("TERM"); term && *term == "dumb") return false;
  return true;
}

std::string format_uptime(double seconds) {
  if (!(seconds >= 0)) seconds = 0;  // also catches NaN
  if (seconds > 1e15) seconds = 1e15;
  const long long s = static_cast<long long>(std::floor(seconds));
  char buf[64];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llds", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, s % 3600 / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
  }
  return buf;
}

std::string format_time(double unix_seconds) {
  // Far outside any real clock (and NaN) there is nothing sensible to print.
  if (!(std::fabs(unix_seconds) < 1e12)) return "?";
  const long long ms_total = std::llround(unix_seconds * 1000.0);
  long long secs = ms_total / 1000;
  long long ms = ms_total % 1000;
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return "?";
  char date[40];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%03lldZ", date, ms);
  return out;
}

std::string format_exit(const json& exit) {
  if (!exit.is_object()) return "";
  if (const json& c = field(exit, "code"); c.is_number_integer()) return "exited " + dump(c);
  if (const json& s = field(exit, "signal"); s.is_string())
    return "killed by " + s.get<std::string>();
  if (const json& s = field(exit, "signal"); s.is_number_integer()) {
    return "killed by signal " + dump(s);
  }
  return "";
}

std::string status_note(const json& status) {
  std::string note = text(status, "reason");
  if (note.empty() && text(status, "state") != "running") {
    note = format_exit(field(status, "last_exit"));
  }
  // A log that cannot be written is news whatever the job is doing: it is losing output.
  if (std::string log = text(status, "log_error"); !log.empty()) {
    note += (note.empty() ? "log: " : "; log: ") + log;
  }
  return note;
}

std::string render_status_table(const json& statuses, bool color) {
  if (!statuses.is_array() || statuses.empty()) return "no jobs configured\n";

  using Row = std::array<std::string, 6>;
  std::vector<Row> rows;
  rows.push_back({"NAME", "STATE", "PID", "UPTIME", "RESTARTS", "NOTE"});
  for (const auto& s : statuses) {
    const json& uptime = field(s, "uptime");
    rows.push_back({text(s, "name"), text(s, "state"), integer(s, "pid", "-"),
                    uptime.is_number() ? format_uptime(uptime.get<double>()) : "-",
                    integer(s, "restarts", "-"), status_note(s)});
  }

  std::array<std::size_t, 6> width{};
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }

  std::string out;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const Row& row = rows[r];
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (c > 0) line += "  ";
      const bool last = c + 1 == row.size();
      // The escape codes go around the word only; padding is counted on the plain text so
      // the columns line up the same with and without colour.
      const std::string_view code = (color && c == 1 && r > 0) ? state_color(row[c]) : "";
      if (!code.empty()) {
        line += std::string(code) + row[c] + std::string(kReset);
        if (!last) line.append(width[c] - row[c].size(), ' ');
      } else {
        line += last ? row[c] : pad(row[c], width[c]);
      }
    }
    out += rstrip(std::move(line)) + "\n";
  }
  return out;
}

int status_exit_code(const json& statuses) {
  if (!statuses.is_array()) return 3;
  for (const auto& s : statuses) {
    if (text(s, "state") != "running") return 3;
  }
  return 0;
}

std::string format_outcome(const json& outcome) {
  std::string what = text(outcome, "message");
  if (what.empty()) what = text(outcome, "state");
  std::string out = text(outcome, "name") + ": " + what;
  if (const std::string pid = integer(outcome, "pid", ""); !pid.empty()) {
    out += " (pid " + pid + ")";
  }
  return out;
}

std::string format_failure(const json& outcome) {
  std::string what = text(outcome, "message");
  if (what.empty()) what = text(outcome, "state");
  std::string out = text(outcome, "name") + ": " + what;
  if (const std::string log = text(outcome, "log"); !log.empty()) out += " (see " + log + ")";
  return out;
}

std::string render_outcomes(const json& outcomes) {
  std::string out;
  if (!outcomes.is_array()) return out;
  for (const auto& o : outcomes) out += format_outcome(o) + "\n";
  return out;
}

std::string render_signal(const json& result) {
  std::string out;
  if (!result.is_array()) return out;
  for (const auto& r : result) {
    const json& sig = field(r, "signal");
    const std::string name = sig.is_string() ? sig.get<std::string>() : dump(sig);
    out += text(r, "name") + ": sent " + name + " to pid " + integer(r, "pid", "?") + "\n";
  }
  return out;
}

std::string render_reload(const json& result) {
  std::string out;
  for (const char* key : {"added", "changed", "removed"}) {
    const json& names = field(result, key);
    if (names.is_array() && !names.empty())
      out += std::string(key) + ": " + join(names, ", ") + "\n";
  }
  const json& unchanged = field(result, "unchanged");
  // The daemon lists unchanged jobs by name; a count is what a person wants to see.
  const std::size_t n = unchanged.is_array()
                            ? unchanged.size()
                            : protocol::to_integer<std::size_t>(unchanged).value_or(0);
  if (n > 0) out += "unchanged: " + std::to_string(n) + (n == 1 ? " job\n" : " jobs\n");
  if (out.empty()) out = "no jobs configured\n";
  return out;
}

std::string render_version(std::string_view client_version, const json& result) {
  std::string out = "vigilctl " + std::string(client_version) + "\n";
  out += "vigild " + text(result, "version");
  const json& proto = field(result, "protocol");
  if (proto.is_number_integer()) {
    out += " (protocol " + dump(proto);
    if (protocol::to_integer<int>(proto) != protocol::kProtocolVersion) {
      out += "; vigilctl speaks " + std::to_string(protocol::kProtocolVersion);
    }
    out += ")";
  }
  return out + "\n";
}

std::string render_state_event(const json& event) {
  std::string out;
  if (const json& t = field(event, "time"); t.is_number())
    out += format_time(t.get<double>()) + " ";
  out += text(event, "job") + " " + text(event, "from") + " -> " + text(event, "to");
  std::string detail;
  if (const std::string pid = integer(event, "pid", ""); !pid.empty()) detail = "pid " + pid;
  if (const std::string exit = format_exit(field(event, "exit")); !exit.empty()) {
    detail += (detail.empty() ? "" : ", ") + exit;
  }
  if (!detail.empty()) out += " (" + detail + ")";
  if (const std::string reason = text(event, "reason"); !reason.empty()) out += ": " + reason;
  return out + "\n";
}

std::string render_error(const protocol::Error& error) {
  if (error.code == protocol::code::failed) {
    std::string out;
    const json& jobs = field(error.details, "jobs");
    if (jobs.is_array()) {
      for (const auto& o : jobs) {
        if (field(o, "ok") == false) out += "vigilctl: " + format_failure(o) + "\n";
      }
    }
    if (!out.empty()) return out;
  }
  std::string out = "vigilctl: " + error.message + "\n";
  if (error.code == protocol::code::config_error) {
    const json& errors = field(error.details, "errors");
    if (errors.is_array()) {
      for (const auto& e : errors) out += (e.is_string() ? e.get<std::string>() : dump(e)) + "\n";
    }
  }
  return out;
}

std::string render_failed_successes(const protocol::Error& error) {
  std::string out;
  const json& jobs = field(error.details, "jobs");
  if (error.code != protocol::code::failed || !jobs.is_array()) return out;
  for (const auto& o : jobs) {
    if (field(o, "ok") == true) out += format_outcome(o) + "\n";
  }
  return out;
}

}  // namespace vigil::ctl
