// The messages of the control protocol (docs/protocol.md): parsing and validating
// requests, encoding responses and events, parsing them back on the client side, and the
// one table of commands that the daemon, the client and the docs share.
#include "message.h"

#include <algorithm>
#include <array>
#include <exception>
#include <limits>
#include <utility>

#include "json_prune.h"

namespace vigil::protocol {

namespace {

// --- The command table and what each command accepts. ---

enum class ArgType {
  names,    // a non-empty array of strings (job names, globs, "all")
  strings,  // a non-empty array of non-empty strings (status members)
  boolean,  // true or false
  string,   // any string
  stream,   // "stdout" or "stderr"
  count,    // an integer from 0 to `max`
  signal,   // a signal name ("HUP", "SIGHUP") or a number from 1 to kMaxSignalNumber
};

struct ArgSpec {
  std::string_view name;
  ArgType type;
  bool required;
  // The largest number a `count` takes: what the daemon's integer holds, so that a value
  // that would be cut short there is refused here.
  std::int64_t max = 0;
};

struct CommandSpec {
  CommandInfo info;
  std::vector<ArgSpec> args;
};

const std::vector<CommandSpec>& command_specs() {
  // Kept in the order the docs present them. `status` takes an optional (possibly empty)
  // list, so its names are checked as an array of strings there, not as a required list.
  static const std::vector<CommandSpec> specs = {
      {{"version", false, false, "the daemon's version and protocol version"}, {}},
      {{"status", false, false, "the state of all jobs, or of those named"},
       {{"names", ArgType::names, false}, {"fields", ArgType::strings, false}}},
      {{"start", true, false, "start jobs and wait until they run or fail"},
       {{"names", ArgType::names, true}, {"no_wait", ArgType::boolean, false}}},
      {{"stop", true, false, "stop jobs and wait until they are down"},
       {{"names", ArgType::names, true}, {"no_wait", ArgType::boolean, false}}},
      {{"restart", true, false, "stop then start jobs and wait until they run or fail"},
       {{"names", ArgType::names, true}, {"no_wait", ArgType::boolean, false}}},
      {{"signal", true, false, "send a signal to the processes of jobs"},
       {{"signal", ArgType::signal, true}, {"names", ArgType::names, true}}},
      {{"logs", false, true, "the last lines of a job's log, optionally followed"},
       {{"name", ArgType::string, true},
        {"stream", ArgType::stream, false},
        {"lines", ArgType::count, false, std::numeric_limits<std::int64_t>::max()},
        {"follow", ArgType::boolean, false}}},
      {{"events", false, true, "a stream of job state changes"}, {}},
      {{"reload", true, false, "re-read the config; restart only the jobs that changed"}, {}},
      {{"reopen_logs", true, false, "close and reopen every log file (after rotation)"}, {}},
      {{"shutdown", true, false, "stop all jobs and exit the daemon"}, {}},
  };
  return specs;
}

const CommandSpec* find_spec(std::string_view name) {
  for (const auto& spec : command_specs()) {
    if (spec.info.name == name) return &spec;
  }
  return nullptr;
}

// --- "Did you mean": the optimal string alignment distance (edits plus transpositions,
// so "stauts" is one edit from "status"). ---

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The closest candidate, if it is close enough to be a plausible typo: at most a third
// of the word's letters wrong (and always one), and '-' for '_' is free, since people
// type the vigilctl spelling ("reopen-logs") at the socket.
template <typename Range>
std::optional<std::string> closest(std::string_view word, const Range& candidates) {
  if (word.size() > 64) return std::nullopt;  // no command is that long; spare the work
  std::string normalized(word);
  std::replace(normalized.begin(), normalized.end(), '-', '_');
  std::optional<std::string> best;
  std::size_t best_distance = std::max<std::size_t>(1, word.size() / 3) + 1;
  for (std::string_view candidate : candidates) {
    const std::size_t d = edit_distance(normalized, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(candidate);
    }
  }
  return best;
}

// --- Messages about JSON types. ---

std::string a_type(const json& j) {
  switch (j.type()) {
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::null:
      return "null";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "a number";
    default:
      return "binary data";
  }
}

Error bad_request(std::string message) {
  return {code::bad_request, std::move(message), nullptr};
}

// nlohmann's messages start with "[json.exception.parse_error.101] "; users need only the
// part after it.
std::string without_exception_tag(const char* what) {
  std::string_view s(what);
  if (!s.empty() && s.front() == '[') {
    const auto end = s.find("] ");
    if (end != std::string_view::npos) s.remove_prefix(end + 2);
  }
  return std::string(s);
}

bool is_scalar(const json& j) {
  return !j.is_structured() && !j.is_binary();
}

// What a value is, for "..., not <this>": a number as written (so that one out of range
// is shown as sent), anything else by its type.
std::string a_value(const json& j) {
  return j.is_number() ? j.dump() : a_type(j);
}

// Whether `j` is an integer from `min` to `max`.
bool integer_within(const json& j, std::int64_t min, std::int64_t max) {
  const std::optional<std::int64_t> v = to_integer<std::int64_t>(j);
  return v && *v >= min && *v <= max;
}

std::optional<std::string> check_arg(std::string_view cmd, const ArgSpec& spec, const json& value) {
  const std::string what =
      "argument '" + std::string(spec.name) + "' of '" + std::string(cmd) + "' must be ";
  switch (spec.type) {
    case ArgType::names: {
      // `status` takes an empty list as "all jobs"; for the commands that change jobs an
      // empty list would silently do nothing, so they require at least one name.
      const bool may_be_empty = !spec.required;
      const std::string expected =
          what + (may_be_empty ? "an array" : "a non-empty array") + " of job names or globs";
      if (!value.is_array()) return expected + ", not " + a_type(value);
      if (value.empty() && !may_be_empty) return expected + ", not an empty array";
      for (std::size_t i = 0; i < value.size(); ++i) {
        const json& n = value[i];
        if (!n.is_string()) {
          return expected + ", but item " + std::to_string(i) + " is " + a_type(n);
        }
        if (n.get_ref<const std::string&>().empty()) {
          return expected + ", but item " + std::to_string(i) + " is an empty string";
        }
      }
      return std::nullopt;
    }
    case ArgType::strings: {
      const std::string expected = what + "a non-empty array of names";
      if (!value.is_array()) return expected + ", not " + a_type(value);
      if (value.empty()) return expected + ", not an empty array";
      for (std::size_t i = 0; i < value.size(); ++i) {
        const json& n = value[i];
        if (!n.is_string() || n.get_ref<const std::string&>().empty()) {
          return expected + ", but item " + std::to_string(i) + " is " +
                 (n.is_string() ? "an empty string" : a_type(n));
        }
      }
      return std::nullopt;
    }
    case ArgType::boolean:
      if (!value.is_boolean()) return what + "true or false, not " + a_type(value);
      return std::nullopt;
    case ArgType::string:
      if (!value.is_string() || value.get_ref<const std::string&>().empty()) {
        return what + "a non-empty string, not " + a_type(value);
      }
      return std::nullopt;
    case ArgType::stream:
      if (value != "stdout" && value != "stderr") {
        return what + "\"stdout\" or \"stderr\", not " +
               (value.is_string() ? value.dump(-1, ' ', false, json::error_handler_t::replace)
                                  : a_type(value));
      }
      return std::nullopt;
    case ArgType::count:
      if (!integer_within(value, 0, spec.max)) {
        const std::string range = spec.max == std::numeric_limits<std::int64_t>::max()
                                      ? "an integer >= 0"
                                      : "an integer from 0 to " + std::to_string(spec.max);
        return what + range + ", not " + a_value(value);
      }
      return std::nullopt;
    case ArgType::signal: {
      const bool ok = (value.is_string() && !value.get_ref<const std::string&>().empty()) ||
                      integer_within(value, 1, kMaxSignalNumber);
      if (!ok) {
        return what + "a signal name (\"HUP\") or a number from 1 to " +
               std::to_string(kMaxSignalNumber) + ", not " + a_value(value);
      }
      return std::nullopt;
    }
  }
  return std::nullopt;
}

// --- Encoding. ---

// Serializes without ever throwing on the content: strings that are not valid UTF-8
// (a job's name or log line can hold anything) have the bad bytes replaced by U+FFFD.
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The members of `extra` appended to an object being written by hand, skipping the keys
// the envelope already holds. Written by hand so that "id" and "ok" come first on the
// wire, which keeps lines readable for someone at a socat prompt.
void append_members(std::string& out, const json& extra,
                    std::initializer_list<std::string_view> reserved) {
  if (!extra.is_object()) return;
  for (const auto& [key, value] : extra.items()) {
    if (std::find(reserved.begin(), reserved.end(), key) != reserved.end()) continue;
    out += ',';
    out += dump(json(key));
    out += ':';
    out += dump(value);
  }
}

// What an encoder returns if serializing fails anyway (only memory exhaustion can get
// here): a line the peer can still parse.
constexpr std::string_view kEncodeFailure =
    R"({"id":null,"ok":false,"error":{"code":"internal","message":"could not encode the message"}})"
    "\n";

}  // namespace

const std::vector<CommandInfo>& commands() {
  static const std::vector<CommandInfo> infos = [] {
    std::vector<CommandInfo> v;
    for (const auto& spec : command_specs()) v.push_back(spec.info);
    return v;
  }();
  return infos;
}

const CommandInfo* find_command(std::string_view name) {
  const auto& all = commands();
  const auto it =
      std::find_if(all.begin(), all.end(), [&](const CommandInfo& c) { return c.name == name; });
  return it == all.end() ? nullptr : &*it;
}

std::optional<Error> check_args(const CommandInfo& command, const json& args) {
  const CommandSpec* spec = find_spec(command.name);
  if (spec == nullptr) return unknown_command_error(command.name);
  if (!args.is_object()) return bad_request("\"args\" must be an object, not " + a_type(args));

  for (const auto& [key, value] : args.items()) {
    const auto it = std::find_if(spec->args.begin(), spec->args.end(),
                                 // (clang before 16 cannot capture a structured binding)
                                 [&name = key](const ArgSpec& a) { return a.name == name; });
    if (it == spec->args.end()) {
      std::string msg = "unknown argument '" + key + "' for '" + std::string(command.name) + "'";
      std::vector<std::string_view> names;
      for (const auto& a : spec->args) names.push_back(a.name);
      if (names.empty()) {
        msg += " (it takes none)";
      } else if (auto near = closest(key, names)) {
        msg += " (did you mean '" + *near + "'?)";
      }
      return bad_request(std::move(msg));
    }
    if (auto problem = check_arg(command.name, *it, value)) return bad_request(*problem);
  }
  for (const auto& a : spec->args) {
    if (a.required && !args.contains(a.name)) {
      return bad_request("missing argument '" + std::string(a.name) + "' of '" +
                         std::string(command.name) + "'");
    }
  }
  return std::nullopt;
}

Error unknown_command_error(std::string_view name) {
  std::string msg = "unknown command '" + std::string(name) + "'";
  std::vector<std::string_view> names;
  for (const auto& c : commands()) names.push_back(c.name);
  if (auto near = closest(name, names)) msg += " (did you mean '" + *near + "'?)";
  return {code::unknown_command, std::move(msg), nullptr};
}

std::variant<Request, ParseFailure> parse_request(std::string_view line) {
  json j;
  try {
    j = json::parse(line);
  } catch (const json::exception& e) {
    // Invalid UTF-8 lands here too: the parser rejects ill-formed strings.
    return ParseFailure{nullptr, bad_request("malformed JSON: " + without_exception_tag(e.what()))};
  } catch (const std::exception& e) {
    return ParseFailure{nullptr, bad_request(std::string("malformed request: ") + e.what())};
  }

  if (!j.is_object()) {
    return ParseFailure{nullptr, bad_request("a request must be a JSON object, not " + a_type(j))};
  }

  Request req;
  if (auto it = j.find("id"); it != j.end()) {
    // The id is echoed back verbatim; a structured one could be made arbitrarily large
    // or deep, and no client needs more than a number or a string.
    if (!is_scalar(*it)) {
      return ParseFailure{nullptr, bad_request("\"id\" must be a string, number, boolean or "
                                               "null, not " +
                                               a_type(*it))};
    }
    req.id = *it;
  }

  const auto cmd = j.find("cmd");
  if (cmd == j.end()) {
    return ParseFailure{req.id, bad_request("missing \"cmd\": a request names its command, "
                                            "as in {\"cmd\": \"status\"}")};
  }
  if (!cmd->is_string()) {
    return ParseFailure{req.id, bad_request("\"cmd\" must be a string, not " + a_type(*cmd))};
  }
  req.cmd = cmd->get<std::string>();

  // "args": null is taken as no args, as clients that always send the member write it.
  if (auto args = j.find("args"); args != j.end() && !args->is_null()) {
    if (!args->is_object()) {
      return ParseFailure{req.id, bad_request("\"args\" must be an object, not " + a_type(*args))};
    }
    req.args = std::move(*args);
  }

  const CommandInfo* info = find_command(req.cmd);
  if (info == nullptr) return ParseFailure{req.id, unknown_command_error(req.cmd)};
  if (auto err = check_args(*info, req.args)) return ParseFailure{req.id, std::move(*err)};
  return req;
}

std::string encode_request(const Request& req) {
  try {
    std::string out = "{";
    if (!req.id.is_null()) out += "\"id\":" + dump(req.id) + ",";
    out += "\"cmd\":" + dump(json(req.cmd));
    if (req.args.is_object() && !req.args.empty()) out += ",\"args\":" + dump(req.args);
    out += "}\n";
    return out;
  } catch (...) {
    return std::string(kEncodeFailure);
  }
}

std::string encode_result(const json& id, const json& result) {
  try {
    return encode_result_text(id, dump(result));
  } catch (...) {
    return std::string(kEncodeFailure);
  }
}

std::string encode_result_text(const json& id, std::string_view result) {
  try {
    std::string out = "{\"id\":" + dump(id) + ",\"ok\":true,\"result\":";
    out.reserve(out.size() + result.size() + 2);
    out += result;
    out += "}\n";
    return out;
  } catch (...) {
    return std::string(kEncodeFailure);
  }
}

std::string encode_error(const json& id, const Error& err) {
  try {
    std::string out = "{\"id\":" + dump(id) +
                      ",\"ok\":false,\"error\":{\"code\":" + dump(json(err.code)) +
                      ",\"message\":" + dump(json(err.message));
    if (err.details.is_object()) {
      append_members(out, err.details, {"code", "message"});
    } else if (!err.details.is_null()) {
      out += ",\"details\":" + dump(err.details);
    }
    out += "}}\n";
    return out;
  } catch (...) {
    return std::string(kEncodeFailure);
  }
}

std::string encode_event(const json& id, std::string_view event, json fields) {
  try {
    std::string out = "{\"id\":" + dump(id) + ",\"event\":" + dump(json(event));
    if (fields.is_object()) {
      append_members(out, fields, {"id", "event"});
    } else if (!fields.is_null()) {
      out += ",\"data\":" + dump(fields);
    }
    out += "}\n";
    return out;
  } catch (...) {
    return std::string(kEncodeFailure);
  }
}

std::variant<Message, std::string> parse_message(std::string_view line) {
  return parse_message(line, {});
}

std::variant<Message, std::string> parse_message(std::string_view line,
                                                 std::span<const std::string_view> keep) {
  json j;
  try {
    j = keep.empty() ? json::parse(line) : parse_pruned(line, keep);
  } catch (const std::exception& e) {
    return "malformed JSON: " + without_exception_tag(e.what());
  }
  if (!j.is_object()) return "a message must be a JSON object, not " + a_type(j);

  Message msg;
  if (auto it = j.find("id"); it != j.end()) msg.id = *it;

  if (auto ev = j.find("event"); ev != j.end()) {
    if (!ev->is_string()) return "\"event\" must be a string, not " + a_type(*ev);
    msg.event = ev->get<std::string>();
    msg.ok = true;
    j.erase("id");
    j.erase("event");
    msg.result = std::move(j);
    return msg;
  }

  const auto ok = j.find("ok");
  if (ok == j.end()) return std::string("missing \"ok\" (or \"event\")");
  if (!ok->is_boolean()) return "\"ok\" must be true or false, not " + a_type(*ok);
  msg.ok = ok->get<bool>();
  if (msg.ok) {
    if (auto r = j.find("result"); r != j.end()) msg.result = std::move(*r);
    return msg;
  }

  const auto err = j.find("error");
  if (err == j.end() || !err->is_object())
    return std::string("an error without an \"error\" object");
  const auto c = err->find("code");
  const auto m = err->find("message");
  if (c == err->end() || !c->is_string()) return std::string("an error without a \"code\" string");
  if (m == err->end() || !m->is_string()) {
    return std::string("an error without a \"message\" string");
  }
  msg.error.code = c->get<std::string>();
  msg.error.message = m->get<std::string>();
  err->erase("code");
  err->erase("message");
  if (!err->empty()) msg.error.details = std::move(*err);
  return msg;
}

}  // namespace vigil::protocol
