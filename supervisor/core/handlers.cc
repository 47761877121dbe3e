// JSON rendering of core objects for the control protocol.
#include "handlers.h"

#include <cmath>
#include <iterator>

#include "json_write.h"
#include "values.h"

namespace vigil::core {

namespace {

// Unix seconds with millisecond precision: enough for people, stable for tests.
double round_ms(double seconds) { return std::round(seconds * 1000.0) / 1000.0; }

}  // namespace

json exit_json(const std::optional<ExitStatus>& e) {
  if (!e) return nullptr;
  if (e->signaled) return {{"signal", config::signal_name(e->value)}};
  return {{"code", e->value}};
}

namespace {
// In the order of the object's members (alphabetical, as a json object keeps them).
constexpr std::string_view kStatusMemberNames[] = {
    "command", "last_exit", "log_error", "name",   "pid",    "reason", "restarts",
    "since",   "state",     "stderr",    "stdout", "uptime", "wanted"};
static_assert(std::size(kStatusMemberNames) == 13);
}  // namespace

std::optional<StatusMembers> status_member(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kStatusMemberNames); ++i) {
    if (kStatusMemberNames[i] == name) return StatusMembers{1} << i;
  }
  return std::nullopt;
}

std::string status_member_names() {
  std::string out;
  for (std::string_view name : kStatusMemberNames) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

void append_status_json(std::string& out, const Job& job, const Instant& now,
                        std::string_view log_error, StatusMembers members) {
  using protocol::append_json_integer;
  using protocol::append_json_number;
  using protocol::append_json_string;
  const auto& spec = job.spec();
  const auto string_or_null = [&out](std::string_view s) {
    if (s.empty()) {
      out += "null";
    } else {
      append_json_string(out, s);
    }
  };
  const auto log_path = [&out](const config::Output& o) {
    if (o.kind == config::Output::Kind::file) {
      append_json_string(out, o.path);
    } else {
      out += "null";
    }
  };
  // Member `i` of kStatusMemberNames, if asked for: writes its key and says to write
  // its value.
  bool first = true;
  std::size_t index = 0;
  const auto member = [&]() {
    const std::size_t i = index++;
    if ((members & (StatusMembers{1} << i)) == 0) return false;
    out += first ? "{\"" : ",\"";
    first = false;
    out += kStatusMemberNames[i];
    out += "\":";
    return true;
  };

  if (member()) {  // command
    out += '[';
    for (std::size_t i = 0; i < spec.argv.size(); ++i) {
      if (i > 0) out += ',';
      append_json_string(out, spec.argv[i]);
    }
    out += ']';
  }
  if (member()) {  // last_exit
    if (const auto& e = job.last_exit(); !e) {
      out += "null";
    } else if (e->signaled) {
      out += "{\"signal\":";
      append_json_string(out, config::signal_name(e->value));
      out += '}';
    } else {
      out += "{\"code\":";
      append_json_integer(out, e->value);
      out += '}';
    }
  }
  if (member()) string_or_null(log_error);            // log_error
  if (member()) append_json_string(out, job.name());  // name
  if (member()) {                                     // pid
    if (job.pid() > 0) {
      append_json_integer(out, job.pid());
    } else {
      out += "null";
    }
  }
  if (member()) string_or_null(job.reason());                     // reason
  if (member()) append_json_integer(out, job.restarts());         // restarts
  if (member()) append_json_number(out, round_ms(job.since()));   // since
  if (member()) append_json_string(out, to_string(job.state()));  // state
  if (member()) {                                                 // stderr
    log_path(spec.stderr_log.kind == config::Output::Kind::merge ? spec.stdout_log
                                                                 : spec.stderr_log);
  }
  if (member()) log_path(spec.stdout_log);  // stdout
  if (member()) {                           // uptime
    if (auto up = job.uptime(now); up && job.state() == State::running) {
      append_json_number(out, static_cast<double>(up->count()) / 1000.0);
    } else {
      out += "null";
    }
  }
  if (member()) out += job.wanted_up() ? "\"up\"" : "\"down\"";  // wanted
  out += first ? "{}" : "}";
}

json status_json(const Job& job, const Instant& now, std::string_view log_error) {
  std::string text;
  append_status_json(text, job, now, log_error);
  return json::parse(text);
}

json outcome_json(const Outcome& o) {
  return {{"name", o.job},
          {"ok", o.ok},
          {"state", to_string(o.state)},
          {"pid", o.pid > 0 ? json(o.pid) : json(nullptr)},
          {"message", o.message},
          {"log", o.log.empty() ? json(nullptr) : json(o.log)}};
}

json state_event_json(const StateChanged& c) {
  return {{"job", c.job},
          {"from", to_string(c.from)},
          {"to", to_string(c.to)},
          {"pid", c.pid > 0 ? json(c.pid) : json(nullptr)},
          {"exit", exit_json(c.exit)},
          {"reason", c.reason.empty() ? json(nullptr) : json(c.reason)},
          {"time", round_ms(c.time)}};
}

json reload_json(const ReloadReport& r) {
  return {{"added", r.added}, {"changed", r.changed}, {"removed", r.removed},
          {"unchanged", r.unchanged}};
}

std::optional<protocol::Error> outcomes_error(const std::vector<Outcome>& outcomes) {
  const Outcome* first = nullptr;
  json all = json::array();
  for (const auto& o : outcomes) {
    all.push_back(outcome_json(o));
    if (!o.ok && first == nullptr) first = &o;
  }
  if (first == nullptr) return std::nullopt;
  std::string msg = first->job + ": " + first->message;
  if (!first->log.empty()) msg += " (see " + first->log + ")";
  return protocol::Error{protocol::code::failed, msg, {{"jobs", all}}};
}

}  // namespace vigil::core
