// How vigilctl shows the daemon's answers to people: the status table, outcomes of
// start/stop/restart, state events, reload reports and errors. Pure functions from the
// protocol's JSON to text, so every line vigilctl prints is unit-tested.
#pragma once

#include <array>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "message.h"

namespace vigil::ctl {

using protocol::json;

// Whether to colour output: only on a terminal, never with --no-color, never when
// NO_COLOR is set to a non-empty value (https://no-color.org), never on TERM=dumb.
bool use_color(bool is_tty, bool no_color_flag,
               const std::function<std::optional<std::string>(std::string_view)>& getenv);

// Uptime for people: "3s", "2m05s", "1h02m", "3d04h". Negative or NaN counts as 0s.
std::string format_uptime(double seconds);

// A unix time as RFC 3339 in UTC with milliseconds: "2026-11-22T10:00:00.123Z".
std::string format_time(double unix_seconds);

// A status's last_exit (or an event's exit) in words: "exited 1", "killed by KILL", or ""
// for null.
std::string format_exit(const json& exit);

// The NOTE column: why the job failed or stopped when the daemon says, else how its last
// process ended (not shown for running jobs, whose last exit is history).
std::string status_note(const json& status);

// The table `vigilctl status` prints, header included, one line per job, each ending in
// '\n'. With colour, only the STATE column is coloured.
std::string render_status_table(const json& statuses, bool color);

// Every member of a status object that render_status_table() and status_exit_code() read:
// vigilctl has the rest of each object skipped while the answer is parsed.
inline constexpr std::array<std::string_view, 8> kStatusTableFields = {
    "name", "state", "pid", "uptime", "restarts", "reason", "last_exit", "log_error"};

// 0 when every job listed is running, 3 otherwise (exit_code::not_running).
int status_exit_code(const json& statuses);

// One outcome of start/stop/restart: "web: running (pid 123)".
std::string format_outcome(const json& outcome);

// A failed outcome, as printed after "vigilctl: ":
// "web: exited with status 1 after 0.2s (see /var/log/vigil/web.err.log)".
std::string format_failure(const json& outcome);

// Every outcome, one line each.
std::string render_outcomes(const json& outcomes);

// The result of `signal`: "web: sent HUP to pid 123", one line per job.
std::string render_signal(const json& result);

// The result of `reload`: "added: a, b", "changed: c", "removed: d", "unchanged: 3 jobs",
// each line only when it has something to say.
std::string render_reload(const json& result);

// The result of `version`, after vigilctl's own: "vigilctl 0.1.0\nvigild 0.1.0 (protocol 1)\n".
std::string render_version(std::string_view client_version, const json& result);

// One state event: "2026-11-22T10:00:00.123Z web starting -> running (pid 123)".
std::string render_state_event(const json& event);

// What goes to stderr for an error response: "vigilctl: <message>\n", then one line per
// config error (config_error) or one "vigilctl: <failure>" line per failed job (failed).
std::string render_error(const protocol::Error& error);

// For a `failed` error: the outcomes that did succeed, for stdout ("" when none).
std::string render_failed_successes(const protocol::Error& error);

}  // namespace vigil::ctl
