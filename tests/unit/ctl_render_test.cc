// Tests of what vigilctl prints: the status table (exact text, with and without colour),
// uptimes, times, outcomes and failures, events, reload reports and error output.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <variant>

#include "render.h"

using namespace vigil::ctl;
using vigil::protocol::Error;
using vigil::protocol::json;

namespace {

// 2026-11-22T10:00:00.123Z
constexpr double kTime = 1795341600.123;

json status_fixture() {
  return json::parse(R"j([
    {"name": "web", "state": "running", "wanted": "up", "pid": 4242, "since": 1795341474.4,
     "uptime": 125.7, "restarts": 2, "last_exit": {"code": 1}, "reason": null,
     "stdout": "/var/log/vigil/web.out.log", "stderr": "/var/log/vigil/web.err.log",
     "command": ["python3", "-m", "http.server"]},
    {"name": "worker-long", "state": "fatal", "wanted": "up", "pid": null, "since": 1795341500,
     "uptime": null, "restarts": 3, "last_exit": {"code": 1},
     "reason": "exited too quickly (3 failed starts)", "stdout": null, "stderr": null,
     "command": ["/bin/false"]},
    {"name": "db", "state": "stopped", "wanted": "down", "pid": null, "since": 1795341000,
     "uptime": null, "restarts": 0, "last_exit": {"signal": "KILL"}, "reason": null,
     "stdout": null, "stderr": null, "command": ["db"]},
    {"name": "cron", "state": "starting", "wanted": "up", "pid": 77, "since": 1795341599,
     "uptime": null, "restarts": 0, "last_exit": null, "reason": null,
     "stdout": null, "stderr": null, "command": ["cron"]}
  ])j");
}

std::function<std::optional<std::string>(std::string_view)> env(
    std::map<std::string, std::string> vars) {
  return [vars](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("status table: exact text without colour") {
  CHECK(render_status_table(status_fixture(), false) ==
        "NAME         STATE     PID   UPTIME  RESTARTS  NOTE\n"
        "web          running   4242  2m05s   2\n"
        "worker-long  fatal     -     -       3         exited too quickly (3 failed starts)\n"
        "db           stopped   -     -       0         killed by KILL\n"
        "cron         starting  77    -       0\n");
}

TEST_CASE("status table: colour only on the state, columns still aligned") {
  CHECK(render_status_table(status_fixture(), true) ==
        "NAME         STATE     PID   UPTIME  RESTARTS  NOTE\n"
        "web          \x1b[32mrunning\x1b[0m   4242  2m05s   2\n"
        "worker-long  \x1b[1;31mfatal\x1b[0m     -     -       3         exited too quickly (3 "
        "failed starts)\n"
        "db           stopped   -     -       0         killed by KILL\n"
        "cron         \x1b[33mstarting\x1b[0m  77    -       0\n");
}

TEST_CASE("status table: no jobs, and fields missing from a different daemon") {
  CHECK(render_status_table(json::array(), false) == "no jobs configured\n");
  CHECK(render_status_table(json::parse(R"j([{"name": "x", "state": "exited"}])j"), false) ==
        "NAME  STATE   PID  UPTIME  RESTARTS  NOTE\n"
        "x     exited  -    -       -\n");
}

TEST_CASE("status table: the members vigilctl keeps are all it reads") {
  // vigilctl parses a status answer keeping only kStatusTableFields of each object: the
  // table and the exit status must come out the same as from the whole answer.
  json statuses = status_fixture();
  statuses.push_back(json::parse(R"j({"name": "gone", "state": "backoff", "pid": null,
      "uptime": null, "restarts": 1, "last_exit": {"signal": "SEGV"}, "reason": null,
      "log_error": "disk full", "wanted": "up"})j"));
  const std::string line = vigil::protocol::encode_result(7, statuses);
  auto parsed = vigil::protocol::parse_message(line, kStatusTableFields);
  REQUIRE(std::holds_alternative<vigil::protocol::Message>(parsed));
  const json& pruned = std::get<vigil::protocol::Message>(parsed).result;
  REQUIRE(pruned.size() == statuses.size());
  CHECK(pruned.back().size() == kStatusTableFields.size());
  CHECK(!pruned[0].contains("command"));
  for (bool color : {false, true}) {
    CHECK(render_status_table(pruned, color) == render_status_table(statuses, color));
  }
  CHECK(status_exit_code(pruned) == status_exit_code(statuses));
}

TEST_CASE("status exit code: 0 only when every listed job runs") {
  CHECK(status_exit_code(status_fixture()) == 3);
  CHECK(status_exit_code(json::parse(R"j([{"state": "running"}, {"state": "running"}])j")) == 0);
  CHECK(status_exit_code(json::parse(R"j([{"state": "running"}, {"state": "backoff"}])j")) == 3);
  CHECK(status_exit_code(json::array()) == 0);
}

TEST_CASE("status note: reason first, then the last exit, none for running jobs; a failing log always") {
  CHECK(status_note(json{{"state", "backoff"},
                         {"reason", "spawn failed: no such file"},
                         {"last_exit", {{"code", 1}}}}) == "spawn failed: no such file");
  CHECK(status_note(json{{"state", "exited"}, {"reason", nullptr}, {"last_exit", {{"code", 0}}}}) ==
        "exited 0");
  CHECK(status_note(json{{"state", "running"}, {"last_exit", {{"code", 2}}}}) == "");
  CHECK(status_note(json{{"state", "stopped"}, {"last_exit", nullptr}}) == "");
  // A failing log shows whatever the state.
  const std::string full = "cannot write /l/w.out.log: No space left on device (7 bytes dropped so far)";
  CHECK(status_note(json{{"state", "running"}, {"log_error", full}}) == "log: " + full);
  CHECK(status_note(json{{"state", "backoff"}, {"reason", "exited with status 1"}, {"log_error", full}}) ==
        "exited with status 1; log: " + full);
  CHECK(status_note(json{{"state", "running"}, {"log_error", nullptr}}) == "");
}

TEST_CASE("format_exit") {
  CHECK(format_exit(json{{"code", 1}}) == "exited 1");
  CHECK(format_exit(json{{"signal", "KILL"}}) == "killed by KILL");
  CHECK(format_exit(json{{"signal", 9}}) == "killed by signal 9");
  CHECK(format_exit(nullptr) == "");
}

TEST_CASE("format_uptime: seconds, minutes, hours, days") {
  CHECK(format_uptime(0) == "0s");
  CHECK(format_uptime(3) == "3s");
  CHECK(format_uptime(59.99) == "59s");
  CHECK(format_uptime(60) == "1m00s");
  CHECK(format_uptime(125) == "2m05s");
  CHECK(format_uptime(3599) == "59m59s");
  CHECK(format_uptime(3600) == "1h00m");
  CHECK(format_uptime(3720) == "1h02m");
  CHECK(format_uptime(86399) == "23h59m");
  CHECK(format_uptime(86400) == "1d00h");
  CHECK(format_uptime(3 * 86400 + 4 * 3600 + 59) == "3d04h");
  CHECK(format_uptime(400 * 86400) == "400d00h");
  CHECK(format_uptime(-5) == "0s");
  CHECK(format_uptime(std::nan("")) == "0s");
}

TEST_CASE("format_time: RFC 3339 UTC with milliseconds") {
  CHECK(format_time(kTime) == "2026-11-22T10:00:00.123Z");
  CHECK(format_time(1795341600) == "2026-11-22T10:00:00.000Z");
  CHECK(format_time(1795341599.9996) == "2026-11-22T10:00:00.000Z");
  CHECK(format_time(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_time(-0.5) == "1969-12-31T23:59:59.500Z");
  CHECK(format_time(std::nan("")) == "?");
}

TEST_CASE("outcomes: one line per job") {
  json outcomes = json::parse(R"j([
    {"name": "web", "ok": true, "state": "running", "pid": 123, "message": "running", "log": null},
    {"name": "db", "ok": true, "state": "stopped", "pid": null, "message": "stopped", "log": null},
    {"name": "q", "ok": true, "state": "starting", "pid": 5, "message": "", "log": null}
  ])j");
  CHECK(render_outcomes(outcomes) == "web: running (pid 123)\ndb: stopped\nq: starting (pid 5)\n");
}

TEST_CASE("failure message: what happened and where to look") {
  CHECK(format_failure(json::parse(R"j({"name": "web", "ok": false, "state": "backoff",
      "pid": null, "message": "exited with status 1 after 0.2s",
      "log": "/var/log/vigil/web.err.log"})j")) ==
        "web: exited with status 1 after 0.2s (see /var/log/vigil/web.err.log)");
  CHECK(format_failure(json::parse(R"j({"name": "web", "ok": false, "state": "fatal",
      "pid": null, "message": "spawn failed: no such file", "log": null})j")) ==
        "web: spawn failed: no such file");
}

TEST_CASE("error output: a failed start lists each failed job; successes go to stdout") {
  Error e{"failed", "web: exited with status 1 after 0.2s (see /var/log/vigil/web.err.log)",
          json::parse(R"j({"jobs": [
            {"name": "db", "ok": true, "state": "running", "pid": 7, "message": "running",
             "log": null},
            {"name": "web", "ok": false, "state": "backoff", "pid": null,
             "message": "exited with status 1 after 0.2s", "log": "/var/log/vigil/web.err.log"},
            {"name": "q", "ok": false, "state": "fatal", "pid": null,
             "message": "spawn failed: permission denied", "log": null}]})j")};
  CHECK(render_error(e) ==
        "vigilctl: web: exited with status 1 after 0.2s (see /var/log/vigil/web.err.log)\n"
        "vigilctl: q: spawn failed: permission denied\n");
  CHECK(render_failed_successes(e) == "db: running (pid 7)\n");
}

TEST_CASE("error output: a failed error without outcomes prints its message") {
  Error e{"failed", "web: exited with status 1 after 0.2s", nullptr};
  CHECK(render_error(e) == "vigilctl: web: exited with status 1 after 0.2s\n");
  CHECK(render_failed_successes(e) == "");
}

TEST_CASE("error output: config errors, one located line each") {
  Error e{"config_error", "config not loaded, nothing changed: 2 errors",
          json{{"errors",
                {"/etc/vigil/vigil.yaml:12:5: jobs.web.umask: \"0999\" is not an octal mode",
                 "/etc/vigil/conf.d/a.yaml:3:3: jobs.a: unknown key 'comand' (did you mean "
                 "'command'?)"}}}};
  CHECK(render_error(e) ==
        "vigilctl: config not loaded, nothing changed: 2 errors\n"
        "/etc/vigil/vigil.yaml:12:5: jobs.web.umask: \"0999\" is not an octal mode\n"
        "/etc/vigil/conf.d/a.yaml:3:3: jobs.a: unknown key 'comand' (did you mean 'command'?)\n");
}

TEST_CASE("error output: any other error is its message") {
  CHECK(render_error(Error{"not_found", "no job named 'wbe' (did you mean 'web'?)", nullptr}) ==
        "vigilctl: no job named 'wbe' (did you mean 'web'?)\n");
}

TEST_CASE("state events") {
  CHECK(render_state_event(json{{"job", "web"},
                                {"from", "starting"},
                                {"to", "running"},
                                {"pid", 123},
                                {"exit", nullptr},
                                {"reason", nullptr},
                                {"time", kTime}}) ==
        "2026-11-22T10:00:00.123Z web starting -> running (pid 123)\n");
  CHECK(render_state_event(json{{"job", "web"},
                                {"from", "running"},
                                {"to", "backoff"},
                                {"pid", 123},
                                {"exit", {{"code", 1}}},
                                {"reason", "exited too quickly"},
                                {"time", kTime}}) ==
        "2026-11-22T10:00:00.123Z web running -> backoff (pid 123, exited 1): exited too "
        "quickly\n");
  CHECK(render_state_event(json{{"job", "db"},
                                {"from", "stopping"},
                                {"to", "stopped"},
                                {"pid", nullptr},
                                {"exit", {{"signal", "TERM"}}},
                                {"time", kTime}}) ==
        "2026-11-22T10:00:00.123Z db stopping -> stopped (killed by TERM)\n");
}

TEST_CASE("reload report") {
  CHECK(render_reload(json{{"added", {"a", "b"}},
                           {"changed", {"c"}},
                           {"removed", json::array()},
                           {"unchanged", {"d", "e", "f"}}}) ==
        "added: a, b\nchanged: c\nunchanged: 3 jobs\n");
  CHECK(render_reload(json{{"added", json::array()},
                           {"changed", json::array()},
                           {"removed", {"old"}},
                           {"unchanged", {"d"}}}) == "removed: old\nunchanged: 1 job\n");
  CHECK(render_reload(json{{"added", json::array()},
                           {"changed", json::array()},
                           {"removed", json::array()},
                           {"unchanged", json::array()}}) == "no jobs configured\n");
}

TEST_CASE("signal result") {
  CHECK(render_signal(json::parse(R"j([{"name": "web", "pid": 123, "signal": "HUP"},
                                      {"name": "db", "pid": 9, "signal": "USR1"}])j")) ==
        "web: sent HUP to pid 123\ndb: sent USR1 to pid 9\n");
}

TEST_CASE("version") {
  CHECK(render_version("0.1.0", json{{"version", "0.1.0"}, {"protocol", 1}}) ==
        "vigilctl 0.1.0\nvigild 0.1.0 (protocol 1)\n");
  CHECK(render_version("0.1.0", json{{"version", "0.3.0"}, {"protocol", 2}}) ==
        "vigilctl 0.1.0\nvigild 0.3.0 (protocol 2; vigilctl speaks 1)\n");
}

TEST_CASE("colour: a tty, unless --no-color, NO_COLOR or TERM=dumb") {
  CHECK(use_color(true, false, env({{"TERM", "xterm"}})));
  CHECK_FALSE(use_color(false, false, env({})));
  CHECK_FALSE(use_color(true, true, env({})));
  CHECK_FALSE(use_color(true, false, env({{"NO_COLOR", "1"}})));
  CHECK(use_color(true, false, env({{"NO_COLOR", ""}})));  // set but empty does not count
  CHECK_FALSE(use_color(true, false, env({{"TERM", "dumb"}})));
}
