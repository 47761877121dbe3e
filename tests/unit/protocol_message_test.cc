// Tests of the protocol's messages: request parsing and validation (every malformed shape
// gets a bad_request that says what was wrong), encoding (never throws, exact wire text),
// parse_message on the client side, and the command table.
#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <variant>

#include "message.h"

using namespace vigil::protocol;

namespace {

Request ok_request(std::string_view line) {
  auto r = parse_request(line);
  if (auto* f = std::get_if<ParseFailure>(&r)) FAIL("unexpected failure: " << f->error.message);
  return std::get<Request>(r);
}

ParseFailure failure(std::string_view line) {
  auto r = parse_request(line);
  REQUIRE(std::holds_alternative<ParseFailure>(r));
  return std::get<ParseFailure>(r);
}

Message message(std::string_view line) {
  auto r = parse_message(line);
  if (auto* e = std::get_if<std::string>(&r)) FAIL("unexpected failure: " << *e);
  return std::get<Message>(r);
}

}  // namespace

// --- parse_request: well-formed requests. ---

TEST_CASE("parse_request: id, cmd and args") {
  Request r = ok_request(R"({"id": 7, "cmd": "status", "args": {"names": ["web", "db*"]}})");
  CHECK(r.id == 7);
  CHECK(r.cmd == "status");
  CHECK(r.args == json{{"names", {"web", "db*"}}});
}

TEST_CASE("parse_request: id and args are optional") {
  Request r = ok_request(R"({"cmd":"version"})");
  CHECK(r.id.is_null());
  CHECK(r.args == json::object());
}

TEST_CASE("parse_request: any scalar id is echoed verbatim") {
  CHECK(ok_request(R"({"id":"abc","cmd":"version"})").id == "abc");
  CHECK(ok_request(R"({"id":true,"cmd":"version"})").id == true);
  CHECK(ok_request(R"({"id":null,"cmd":"version"})").id.is_null());
  CHECK(ok_request(R"({"id":1.5,"cmd":"version"})").id == 1.5);
  CHECK(ok_request(R"({"id":-3,"cmd":"version"})").id == -3);
}

TEST_CASE("parse_request: null args are no args") {
  CHECK(ok_request(R"({"cmd":"reload","args":null})").args == json::object());
}

TEST_CASE("parse_request: unknown top-level members are ignored") {
  CHECK(ok_request(R"({"cmd":"version","trace":"x"})").cmd == "version");
}

TEST_CASE("parse_request: each command with its full set of args") {
  CHECK(ok_request(R"({"cmd":"status","args":{"names":[]}})").cmd == "status");
  CHECK(ok_request(R"({"cmd":"start","args":{"names":["all"],"no_wait":true}})").cmd == "start");
  CHECK(ok_request(R"({"cmd":"stop","args":{"names":["w*"],"no_wait":false}})").cmd == "stop");
  CHECK(ok_request(R"({"cmd":"restart","args":{"names":["web"]}})").cmd == "restart");
  CHECK(ok_request(R"({"cmd":"signal","args":{"signal":"HUP","names":["web"]}})").cmd == "signal");
  CHECK(ok_request(R"({"cmd":"signal","args":{"signal":1,"names":["web"]}})").cmd == "signal");
  CHECK(ok_request(
            R"({"cmd":"logs","args":{"name":"web","stream":"stderr","lines":0,"follow":true}})")
            .cmd == "logs");
  CHECK(ok_request(R"({"cmd":"events","args":{}})").cmd == "events");
  CHECK(ok_request(R"({"cmd":"reload"})").cmd == "reload");
  CHECK(ok_request(R"({"cmd":"reopen_logs"})").cmd == "reopen_logs");
  CHECK(ok_request(R"({"cmd":"shutdown"})").cmd == "shutdown");
}

// --- parse_request: malformed lines. ---

TEST_CASE("parse_request: malformed JSON") {
  ParseFailure f = failure("{\"cmd\": ");
  CHECK(f.error.code == "bad_request");
  CHECK(f.id.is_null());
  CHECK(f.error.message.rfind("malformed JSON: parse error at line 1, column 9", 0) == 0);
}

TEST_CASE("parse_request: invalid UTF-8 is a bad_request, not an exception") {
  ParseFailure f = failure("{\"cmd\": \"st\xff\xfe\"}");
  CHECK(f.error.code == "bad_request");
  CHECK(f.error.message.find("ill-formed UTF-8") != std::string::npos);
  // The reply carrying that message must itself be valid JSON.
  const std::string line = encode_error(f.id, f.error);
  CHECK(json::parse(line)["error"]["code"] == "bad_request");
}

TEST_CASE("parse_request: a request must be an object") {
  CHECK(failure("[1,2]").error.message == "a request must be a JSON object, not an array");
  CHECK(failure("\"status\"").error.message == "a request must be a JSON object, not a string");
  CHECK(failure("42").error.message == "a request must be a JSON object, not a number");
  CHECK(failure("null").error.message == "a request must be a JSON object, not null");
  CHECK(failure("[1,2]").error.code == "bad_request");
}

TEST_CASE("parse_request: missing cmd keeps the id") {
  ParseFailure f = failure(R"({"id": 3, "args": {}})");
  CHECK(f.error.code == "bad_request");
  CHECK(f.id == 3);
  CHECK(f.error.message ==
        R"(missing "cmd": a request names its command, as in {"cmd": "status"})");
}

TEST_CASE("parse_request: cmd must be a string") {
  ParseFailure f = failure(R"({"id": "x", "cmd": 5})");
  CHECK(f.id == "x");
  CHECK(f.error.message == R"("cmd" must be a string, not a number)");
}

TEST_CASE("parse_request: args must be an object") {
  ParseFailure f = failure(R"({"id": 1, "cmd": "status", "args": ["web"]})");
  CHECK(f.id == 1);
  CHECK(f.error.code == "bad_request");
  CHECK(f.error.message == R"("args" must be an object, not an array)");
}

TEST_CASE("parse_request: a structured id is refused, without echoing it") {
  ParseFailure f = failure(R"({"id": {"a": 1}, "cmd": "status"})");
  CHECK(f.id.is_null());
  CHECK(f.error.message == R"("id" must be a string, number, boolean or null, not an object)");
  CHECK(failure(R"({"id": [1], "cmd": "status"})").error.message ==
        R"("id" must be a string, number, boolean or null, not an array)");
}

TEST_CASE("parse_request: unknown command, with a suggestion when one is close") {
  ParseFailure f = failure(R"({"id": 2, "cmd": "stauts"})");
  CHECK(f.id == 2);
  CHECK(f.error.code == "unknown_command");
  CHECK(f.error.message == "unknown command 'stauts' (did you mean 'status'?)");
  CHECK(failure(R"({"cmd": "reopen-logs"})").error.message ==
        "unknown command 'reopen-logs' (did you mean 'reopen_logs'?)");
  CHECK(failure(R"({"cmd": "frobnicate"})").error.message == "unknown command 'frobnicate'");
}

TEST_CASE("parse_request: argument values of the wrong type") {
  auto msg = [](std::string_view line) { return failure(line).error.message; };
  CHECK(msg(R"({"cmd":"status","args":{"names":"web"}})") ==
        "argument 'names' of 'status' must be an array of job names or globs, not a string");
  CHECK(msg(R"({"cmd":"status","args":{"names":["web",3]}})") ==
        "argument 'names' of 'status' must be an array of job names or globs, but item 1 is "
        "a number");
  CHECK(msg(R"({"cmd":"start","args":{"names":[]}})") ==
        "argument 'names' of 'start' must be a non-empty array of job names or globs, not an "
        "empty array");
  CHECK(msg(R"({"cmd":"stop","args":{"names":[""]}})") ==
        "argument 'names' of 'stop' must be a non-empty array of job names or globs, but item "
        "0 is an empty string");
  CHECK(msg(R"({"cmd":"restart","args":{"names":["web"],"no_wait":1}})") ==
        "argument 'no_wait' of 'restart' must be true or false, not a number");
  CHECK(msg(R"({"cmd":"signal","args":{"signal":true,"names":["web"]}})") ==
        "argument 'signal' of 'signal' must be a signal name (\"HUP\") or a number from 1 to "
        "64, not a boolean");
  CHECK(msg(R"({"cmd":"signal","args":{"signal":0,"names":["web"]}})") ==
        "argument 'signal' of 'signal' must be a signal name (\"HUP\") or a number from 1 to "
        "64, not 0");
  CHECK(msg(R"({"cmd":"logs","args":{"name":"web","lines":-1}})") ==
        "argument 'lines' of 'logs' must be an integer >= 0, not -1");
  CHECK(msg(R"({"cmd":"logs","args":{"name":"web","stream":"both"}})") ==
        "argument 'stream' of 'logs' must be \"stdout\" or \"stderr\", not \"both\"");
  CHECK(msg(R"({"cmd":"logs","args":{"name":"web","follow":"yes"}})") ==
        "argument 'follow' of 'logs' must be true or false, not a string");
}

TEST_CASE("parse_request: a number out of range is refused, never cut to fit") {
  auto msg = [](std::string_view line) { return failure(line).error.message; };
  // 2^32 + 1 would be 1 (SIGHUP) as an int.
  CHECK(msg(R"({"cmd":"signal","args":{"names":["x"],"signal":4294967297}})") ==
        "argument 'signal' of 'signal' must be a signal name (\"HUP\") or a number from 1 to "
        "64, not 4294967297");
  CHECK(msg(R"({"cmd":"signal","args":{"names":["x"],"signal":65}})") ==
        "argument 'signal' of 'signal' must be a signal name (\"HUP\") or a number from 1 to "
        "64, not 65");
  CHECK(msg(R"({"cmd":"signal","args":{"names":["x"],"signal":-4294967295}})") ==
        "argument 'signal' of 'signal' must be a signal name (\"HUP\") or a number from 1 to "
        "64, not -4294967295");
  CHECK(msg(R"({"cmd":"signal","args":{"names":["x"],"signal":1.0}})") ==
        "argument 'signal' of 'signal' must be a signal name (\"HUP\") or a number from 1 to "
        "64, not 1.0");
  CHECK(ok_request(R"({"cmd":"signal","args":{"names":["x"],"signal":64}})").args["signal"] == 64);
  // Above 2^63 - 1 a count no longer fits the daemon's signed 64-bit reading of it.
  CHECK(msg(R"({"cmd":"logs","args":{"name":"web","lines":18446744073709551615}})") ==
        "argument 'lines' of 'logs' must be an integer >= 0, not 18446744073709551615");
  CHECK(msg(R"({"cmd":"logs","args":{"name":"web","lines":2.5}})") ==
        "argument 'lines' of 'logs' must be an integer >= 0, not 2.5");
  CHECK(ok_request(R"({"cmd":"logs","args":{"name":"web","lines":9223372036854775807}})")
            .args["lines"] == INT64_MAX);
}

TEST_CASE("to_integer: the value when the type holds it, else nothing") {
  CHECK(to_integer<int>(json::parse("4294967297")) == std::nullopt);
  CHECK(to_integer<int>(json::parse("2147483647")) == 2147483647);
  CHECK(to_integer<int>(json::parse("-2147483648")) == -2147483647 - 1);
  CHECK(to_integer<int>(json::parse("-2147483649")) == std::nullopt);
  CHECK(to_integer<std::uint64_t>(json::parse("-1")) == std::nullopt);
  CHECK(to_integer<std::uint64_t>(json::parse("18446744073709551615")) == UINT64_MAX);
  CHECK(to_integer<std::int64_t>(json::parse("18446744073709551615")) == std::nullopt);
  CHECK(to_integer<int>(json::parse("3.0")) == std::nullopt);
  CHECK(to_integer<int>(json::parse("\"3\"")) == std::nullopt);
}

TEST_CASE("parse_request: missing and unknown arguments") {
  auto msg = [](std::string_view line) { return failure(line).error.message; };
  CHECK(msg(R"({"cmd":"start"})") == "missing argument 'names' of 'start'");
  CHECK(msg(R"({"cmd":"signal","args":{"names":["web"]}})") ==
        "missing argument 'signal' of 'signal'");
  CHECK(msg(R"({"cmd":"logs","args":{}})") == "missing argument 'name' of 'logs'");
  CHECK(msg(R"({"cmd":"start","args":{"names":["web"],"no-wait":true}})") ==
        "unknown argument 'no-wait' for 'start' (did you mean 'no_wait'?)");
  CHECK(msg(R"({"cmd":"status","args":{"nmaes":["web"]}})") ==
        "unknown argument 'nmaes' for 'status' (did you mean 'names'?)");
  CHECK(msg(R"({"cmd":"reload","args":{"force":true}})") ==
        "unknown argument 'force' for 'reload' (it takes none)");
}

// --- Encoding. ---

TEST_CASE("encode_result: exact wire text, id first") {
  CHECK(encode_result(1, json{{"version", "0.1.0"}, {"protocol", 1}}) ==
        "{\"id\":1,\"ok\":true,\"result\":{\"protocol\":1,\"version\":\"0.1.0\"}}\n");
  CHECK(encode_result(nullptr, json::object()) == "{\"id\":null,\"ok\":true,\"result\":{}}\n");
}

TEST_CASE("encode_error: details are merged into the error object") {
  Error e{code::config_error, "the config has 1 error",
          json{{"errors", {"vigil.yaml:3:5: jobs.web.command: expected a list or a string"}}}};
  CHECK(encode_error("r1", e) ==
        "{\"id\":\"r1\",\"ok\":false,\"error\":{\"code\":\"config_error\",\"message\":\"the "
        "config has 1 error\",\"errors\":[\"vigil.yaml:3:5: jobs.web.command: expected a list "
        "or a string\"]}}\n");
}

TEST_CASE("encode_error: details cannot overwrite code or message") {
  Error e{code::not_found, "no job named 'x'", json{{"code", "ok"}, {"message", "fine"}}};
  CHECK(encode_error(4, e) ==
        "{\"id\":4,\"ok\":false,\"error\":{\"code\":\"not_found\",\"message\":\"no job named "
        "'x'\"}}\n");
}

TEST_CASE("encode_event: kind after the id, then the fields") {
  CHECK(encode_event(9, "log", json{{"name", "web"}, {"stream", "stdout"}, {"text", "hi\n"}}) ==
        "{\"id\":9,\"event\":\"log\",\"name\":\"web\",\"stream\":\"stdout\",\"text\":\"hi\\n\"}\n");
}

TEST_CASE("encode_request: omits a null id and empty args") {
  CHECK(encode_request(Request{nullptr, "version", json::object()}) == "{\"cmd\":\"version\"}\n");
  CHECK(encode_request(Request{1, "status", json{{"names", {"web"}}}}) ==
        "{\"id\":1,\"cmd\":\"status\",\"args\":{\"names\":[\"web\"]}}\n");
}

TEST_CASE("encoders never throw on invalid UTF-8: bad bytes become U+FFFD") {
  const std::string bad =
      "a\xff"
      "b";
  std::string line;
  CHECK_NOTHROW(line = encode_result(1, json{{"text", bad}}));
  CHECK(line ==
        "{\"id\":1,\"ok\":true,\"result\":{\"text\":\"a\xEF\xBF\xBD"
        "b\"}}\n");
  CHECK_NOTHROW(line = encode_error(bad, Error{code::internal, bad, json{{bad, bad}}}));
  CHECK(json::parse(line)["error"]["message"] ==
        "a\xEF\xBF\xBD"
        "b");
  CHECK_NOTHROW(line = encode_event(1, bad, json{{"text", bad}}));
  CHECK(json::parse(line)["event"] ==
        "a\xEF\xBF\xBD"
        "b");
  CHECK_NOTHROW(line = encode_request(Request{bad, bad, json{{"name", bad}}}));
  CHECK(json::parse(line)["cmd"] ==
        "a\xEF\xBF\xBD"
        "b");
}

TEST_CASE("an encoded request parses back to the same request") {
  Request in{42, "logs", json{{"name", "web"}, {"lines", 5}, {"follow", true}}};
  Request out = ok_request(encode_request(in));
  CHECK(out.id == 42);
  CHECK(out.cmd == "logs");
  CHECK(out.args == in.args);
}

// --- parse_message: the client side. ---

TEST_CASE("parse_message: an ok response") {
  Message m = message(encode_result(1, json::array({1, 2})));
  CHECK(m.id == 1);
  CHECK(m.ok);
  CHECK_FALSE(m.event.has_value());
  CHECK(m.result == json::array({1, 2}));
}

TEST_CASE("parse_message: an error response with details") {
  Error e{code::failed, "web: exited with status 1 after 0.2s", json{{"jobs", json::array()}}};
  Message m = message(encode_error(5, e));
  CHECK(m.id == 5);
  CHECK_FALSE(m.ok);
  CHECK(m.error.code == "failed");
  CHECK(m.error.message == "web: exited with status 1 after 0.2s");
  CHECK(m.error.details == json{{"jobs", json::array()}});
}

TEST_CASE("parse_message: an error without details has null details") {
  Message m = message(R"({"id":1,"ok":false,"error":{"code":"busy","message":"too many"}})");
  CHECK(m.error.code == "busy");
  CHECK(m.error.details.is_null());
}

TEST_CASE("parse_message: an event carries its fields in result") {
  Message m = message(encode_event(3, "state", json{{"job", "web"}, {"to", "running"}}));
  CHECK(m.id == 3);
  REQUIRE(m.event.has_value());
  CHECK(*m.event == "state");
  CHECK(m.result == json{{"job", "web"}, {"to", "running"}});
}

TEST_CASE("parse_message: malformed responses are reported, not thrown") {
  auto err = [](std::string_view line) {
    auto r = parse_message(line);
    REQUIRE(std::holds_alternative<std::string>(r));
    return std::get<std::string>(r);
  };
  CHECK(err("[]") == "a message must be a JSON object, not an array");
  CHECK(err(R"({"id":1})") == "missing \"ok\" (or \"event\")");
  CHECK(err(R"({"ok":"yes"})") == "\"ok\" must be true or false, not a string");
  CHECK(err(R"({"ok":false})") == "an error without an \"error\" object");
  CHECK(err(R"({"ok":false,"error":{"message":"x"}})") == "an error without a \"code\" string");
  CHECK(err(R"({"event":1})") == "\"event\" must be a string, not a number");
  CHECK(err("{\"ok\":true,\"result\":\"\xff\"}").rfind("malformed JSON: ", 0) == 0);
}

// --- The command table. ---

TEST_CASE("commands: names are unique and all are findable") {
  std::set<std::string_view> names;
  for (const auto& c : commands()) {
    CHECK(names.insert(c.name).second);
    CHECK(find_command(c.name) == &c);
    CHECK_FALSE(c.summary.empty());
  }
  CHECK(names == std::set<std::string_view>{"version", "status", "start", "stop", "restart",
                                            "signal", "logs", "events", "reload", "reopen_logs",
                                            "shutdown"});
  CHECK(find_command("nope") == nullptr);
}

TEST_CASE("commands: the read-only set is exactly status, version, logs, events") {
  std::set<std::string_view> read_only;
  for (const auto& c : commands()) {
    if (!c.mutating) read_only.insert(c.name);
  }
  CHECK(read_only == std::set<std::string_view>{"status", "version", "logs", "events"});
}

TEST_CASE("commands: only logs and events stream") {
  std::set<std::string_view> streaming;
  for (const auto& c : commands()) {
    if (c.streaming) streaming.insert(c.name);
  }
  CHECK(streaming == std::set<std::string_view>{"logs", "events"});
}

TEST_CASE("check_args: usable on its own") {
  CHECK_FALSE(check_args(*find_command("status"), json::object()).has_value());
  auto err = check_args(*find_command("version"), json{{"x", 1}});
  REQUIRE(err.has_value());
  CHECK(err->code == "bad_request");
  CHECK(err->message == "unknown argument 'x' for 'version' (it takes none)");
}

TEST_CASE("parse_request: a deeply nested line is refused without a crash") {
  // The parser is not recursive, but destroying or echoing such a value could be.
  const std::string deep = "{\"cmd\":\"status\",\"args\":{\"names\":" + std::string(100000, '[') +
                           std::string(100000, ']') + "}}";
  ParseFailure f = failure(deep);
  CHECK(f.error.message ==
        "argument 'names' of 'status' must be an array of job names or globs, but item 0 is an "
        "array");
}
