// Request, response and event messages of the control protocol (docs/protocol.md), and
// the table of commands. Shared by vigild and vigilctl; nlohmann_json only.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace vigil::protocol {

using json = nlohmann::json;

inline constexpr int kProtocolVersion = 1;

// The highest signal number `signal` accepts (SIGRTMAX on Linux).
inline constexpr int kMaxSignalNumber = 64;

// The value of an integer JSON number as T, or nothing when `j` is not an integer or T
// cannot hold its value. Every number that comes off the wire becomes a C integer this
// way, never by get<T>(), which wraps: 4294967297 read as an int is 1 (SIGHUP).
template <std::integral T>
std::optional<T> to_integer(const json& j) {
  if (j.is_number_unsigned()) {
    const auto v = j.get<std::uint64_t>();
    if (std::in_range<T>(v)) return static_cast<T>(v);
  } else if (j.is_number_integer()) {
    const auto v = j.get<std::int64_t>();
    if (std::in_range<T>(v)) return static_cast<T>(v);
  }
  return std::nullopt;
}

// Error codes, as they appear on the wire.
namespace code {
inline constexpr const char* bad_request = "bad_request";          // malformed line or arguments
inline constexpr const char* too_large = "too_large";              // request line over 1 MiB
inline constexpr const char* unknown_command = "unknown_command";  // no such cmd
inline constexpr const char* not_found = "not_found";              // no such job
inline constexpr const char* permission_denied = "permission_denied";
inline constexpr const char* busy = "busy";                  // too many clients
inline constexpr const char* config_error = "config_error";  // reload of a bad config
inline constexpr const char* failed = "failed";              // a job did not reach the goal
inline constexpr const char* not_running = "not_running";    // signal to a job with no pid
inline constexpr const char* shutting_down = "shutting_down";
inline constexpr const char* internal = "internal";
}  // namespace code

struct Error {
  std::string code;
  std::string message;
  json details = nullptr;  // extra fields merged into the error object (e.g. "errors", "jobs")
};

struct Request {
  json id;  // echoed back verbatim; any JSON scalar, null when absent
  std::string cmd;
  json args = json::object();
};

// Parses one request line. On failure returns the error and, where the line held one,
// the id to answer with. A Request that comes out names a command of the table below and
// its args have passed check_args(), so handlers may rely on their JSON types, and on
// each number being an integer within the range the table gives it (to read with
// to_integer); whether the named jobs exist is for the daemon to say.
struct ParseFailure {
  json id;
  Error error;
};
std::variant<Request, ParseFailure> parse_request(std::string_view line);

// Each of these returns one line, '\n' included. Invalid UTF-8 in strings is replaced
// (U+FFFD), never an exception.
std::string encode_request(const Request& req);
std::string encode_result(const json& id, const json& result);
// The same line for a result already written as JSON text (see json_write.h).
std::string encode_result_text(const json& id, std::string_view result);
std::string encode_error(const json& id, const Error& err);
std::string encode_event(const json& id, std::string_view event, json fields);

// A response or event line as the client sees it.
struct Message {
  json id;
  std::optional<std::string> event;  // set for event lines
  bool ok = false;
  json result;  // ok responses; the event's fields for events
  Error error;  // !ok responses
};
std::variant<Message, std::string> parse_message(std::string_view line);
// The same, but of each object in an array `result` only the members named in `keep` are
// kept (see json_prune.h): for a client that shows a few fields of a large answer. An
// empty `keep` keeps everything.
std::variant<Message, std::string> parse_message(std::string_view line,
                                                 std::span<const std::string_view> keep);

// The command table: one entry per protocol command. The daemon's handler registry,
// the docs and the permission check are all checked against it.
struct CommandInfo {
  std::string_view name;
  bool mutating;   // changes state (vs. read-only)
  bool streaming;  // may keep sending events after the response
  std::string_view summary;
};
const std::vector<CommandInfo>& commands();
const CommandInfo* find_command(std::string_view name);

// Checks a command's args against what it accepts (docs/protocol.md): no unknown
// members, required ones present, each of the expected JSON type. Returns a bad_request
// error saying which argument and what was expected, or nothing when they are fine.
std::optional<Error> check_args(const CommandInfo& command, const json& args);

// The unknown_command error for `name`, with a "did you mean" when a command is close.
Error unknown_command_error(std::string_view name);

}  // namespace vigil::protocol
