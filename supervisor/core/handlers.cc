// JSON rendering of core objects for the control protocol.
#include "handlers.h"

#include <cmath>

#include "values.h"

namespace vigil::core {

namespace {

json log_path(const config::Output& out) {
  if (out.kind == config::Output::Kind::file) return out.path;
  return nullptr;
}

// Unix seconds with millisecond precision: enough for people, stable for tests.
double round_ms(double seconds) { return std::round(seconds * 1000.0) / 1000.0; }

}  // namespace

json exit_json(const std::optional<ExitStatus>& e) {
  if (!e) return nullptr;
  if (e->signaled) return {{"signal", config::signal_name(e->value)}};
  return {{"code", e->value}};
}

json status_json(const Job& job, const Instant& now) {
  const auto& spec = job.spec();
  json j;
  j["name"] = job.name();
  j["state"] = to_string(job.state());
  j["wanted"] = job.wanted_up() ? "up" : "down";
  j["pid"] = job.pid() > 0 ? json(job.pid()) : json(nullptr);
  j["since"] = round_ms(job.since());
  if (auto up = job.uptime(now); up && job.state() == State::running) {
    j["uptime"] = static_cast<double>(up->count()) / 1000.0;
  } else {
    j["uptime"] = nullptr;
  }
  j["restarts"] = job.restarts();
  j["last_exit"] = exit_json(job.last_exit());
  j["reason"] = job.reason().empty() ? json(nullptr) : json(job.reason());
  j["stdout"] = log_path(spec.stdout_log);
  j["stderr"] = spec.stderr_log.kind == config::Output::Kind::merge ? log_path(spec.stdout_log)
                                                                     : log_path(spec.stderr_log);
  j["command"] = spec.argv;
  return j;
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
