// Tests of vigilctl's argument parsing: the request each command line turns into, and
// the exact usage error (exit 2) for each way a command line can be wrong.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <variant>
#include <vector>

#include "args.h"
#include "message.h"

using namespace vigil::ctl;
using vigil::protocol::json;

namespace {

Invocation ok(const std::vector<std::string>& args) {
  auto r = parse_args(args);
  if (auto* e = std::get_if<UsageError>(&r)) FAIL("unexpected usage error: " << e->message);
  return std::get<Invocation>(r);
}

UsageError bad(const std::vector<std::string>& args) {
  auto r = parse_args(args);
  REQUIRE(std::holds_alternative<UsageError>(r));
  return std::get<UsageError>(r);
}

// The request as it goes on the wire, which is what the daemon will see.
std::string wire(const std::vector<std::string>& args) {
  return vigil::protocol::encode_request(ok(args).request);
}

}  // namespace

TEST_CASE("args: status, with and without names") {
  CHECK(wire({"status"}) == "{\"id\":1,\"cmd\":\"status\"}\n");
  CHECK(wire({"status", "web", "db*"}) ==
        "{\"id\":1,\"cmd\":\"status\",\"args\":{\"names\":[\"web\",\"db*\"]}}\n");
  Invocation inv = ok({"status"});
  CHECK(inv.action == Invocation::Action::run);
  CHECK(inv.command == "status");
}

TEST_CASE("args: start, stop and restart") {
  CHECK(wire({"start", "web"}) == "{\"id\":1,\"cmd\":\"start\",\"args\":{\"names\":[\"web\"]}}\n");
  CHECK(wire({"stop", "--no-wait", "all"}) ==
        "{\"id\":1,\"cmd\":\"stop\",\"args\":{\"names\":[\"all\"],\"no_wait\":true}}\n");
  CHECK(wire({"restart", "web", "db", "--no-wait"}) ==
        "{\"id\":1,\"cmd\":\"restart\",\"args\":{\"names\":[\"web\",\"db\"],\"no_wait\":true}}\n");
}

TEST_CASE("args: signal by name and by number") {
  CHECK(wire({"signal", "HUP", "web", "db"}) ==
        "{\"id\":1,\"cmd\":\"signal\",\"args\":{\"names\":[\"web\",\"db\"],\"signal\":\"HUP\"}}\n");
  CHECK(ok({"signal", "9", "web"}).request.args["signal"] == 9);
  CHECK(ok({"signal", "sigterm", "web"}).request.args["signal"] == "sigterm");
  CHECK(ok({"signal", "64", "web"}).request.args["signal"] == 64);
}

TEST_CASE("args: logs and its options") {
  CHECK(ok({"logs", "web"}).request.args ==
        json{{"name", "web"}, {"stream", "stdout"}, {"lines", 10}});
  CHECK(ok({"logs", "-f", "-n", "5", "--stderr", "web"}).request.args ==
        json{{"name", "web"}, {"stream", "stderr"}, {"lines", 5}, {"follow", true}});
  CHECK(ok({"logs", "web", "-n0"}).request.args["lines"] == 0);
  CHECK(ok({"logs", "--lines=20", "--follow", "web"}).request.args ==
        json{{"name", "web"}, {"stream", "stdout"}, {"lines", 20}, {"follow", true}});
}

TEST_CASE("args: commands without arguments") {
  CHECK(wire({"events"}) == "{\"id\":1,\"cmd\":\"events\"}\n");
  CHECK(wire({"reload"}) == "{\"id\":1,\"cmd\":\"reload\"}\n");
  CHECK(wire({"shutdown"}) == "{\"id\":1,\"cmd\":\"shutdown\"}\n");
  CHECK(wire({"version"}) == "{\"id\":1,\"cmd\":\"version\"}\n");
  Invocation inv = ok({"reopen-logs"});
  CHECK(inv.command == "reopen-logs");
  CHECK(inv.request.cmd == "reopen_logs");
}

TEST_CASE("args: global options, before or after the command") {
  Invocation inv = ok({"-s", "/tmp/v.sock", "-c", "/etc/x.yaml", "--json", "--no-color", "status"});
  CHECK(inv.global.socket == "/tmp/v.sock");
  CHECK(inv.global.config == "/etc/x.yaml");
  CHECK(inv.global.json);
  CHECK(inv.global.no_color);

  inv = ok({"status", "--json", "--socket=/a.sock", "web"});
  CHECK(inv.global.socket == "/a.sock");
  CHECK(inv.global.json);
  CHECK(inv.request.args == json{{"names", {"web"}}});

  CHECK(ok({"-s/b.sock", "status"}).global.socket == "/b.sock");
  CHECK(ok({"--config", "c.yaml", "status"}).global.config == "c.yaml");
  CHECK(ok({"--server-user", "vigil", "status"}).global.server_user == "vigil");
  CHECK(ok({"status", "--server-user=998"}).global.server_user == "998");
  CHECK_FALSE(ok({"status"}).global.server_user.has_value());
  CHECK_FALSE(ok({"status"}).global.json);
  CHECK_FALSE(ok({"status"}).global.socket.has_value());
}

TEST_CASE("args: -- ends the options") {
  CHECK(ok({"stop", "--", "-odd", "--no-wait"}).request.args ==
        json{{"names", {"-odd", "--no-wait"}}});
}

TEST_CASE("args: help and version") {
  Invocation inv = ok({"--help"});
  CHECK(inv.action == Invocation::Action::help);
  CHECK(inv.command == "");
  CHECK(ok({"-h"}).action == Invocation::Action::help);
  inv = ok({"logs", "--help"});
  CHECK(inv.action == Invocation::Action::help);
  CHECK(inv.command == "logs");
  // --help wins over missing arguments: "how do I use start?" must not be an error.
  CHECK(ok({"start", "-h"}).command == "start");
  inv = ok({"help", "reopen-logs"});
  CHECK(inv.action == Invocation::Action::help);
  CHECK(inv.command == "reopen-logs");
  CHECK(ok({"help"}).command == "");
  CHECK(ok({"--version"}).action == Invocation::Action::version);
}

TEST_CASE("args: usage errors, with the exact text printed") {
  CHECK(bad({}).text() == "vigilctl: no command given\nsee 'vigilctl --help'\n");
  CHECK(bad({"stauts"}).text() ==
        "vigilctl: unknown command 'stauts' (did you mean 'status'?)\nsee 'vigilctl --help'\n");
  CHECK(bad({"frobnicate"}).message == "unknown command 'frobnicate'");
  CHECK(bad({"--frob", "status"}).text() ==
        "vigilctl: unknown option '--frob'\nsee 'vigilctl --help'\n");
  CHECK(bad({"status", "-f"}).text() ==
        "vigilctl: unknown option '-f' for 'status'\nsee 'vigilctl status --help'\n");
  CHECK(bad({"start"}).text() ==
        "vigilctl: 'start' needs job names, or 'all'\nsee 'vigilctl start --help'\n");
}

TEST_CASE("args: every kind of usage error") {
  CHECK(bad({"stop"}).message == "'stop' needs job names, or 'all'");
  CHECK(bad({"restart", "--no-wait"}).message == "'restart' needs job names, or 'all'");
  CHECK(bad({"status", "--no-wait"}).message == "unknown option '--no-wait' for 'status'");
  CHECK(bad({"signal"}).message == "'signal' needs a signal and job names");
  CHECK(bad({"signal", "HUP"}).message == "'signal' needs job names after the signal");
  // Signals are checked before anything is sent, with the names and numbers vigild knows.
  CHECK(bad({"signal", "%x", "web"}).message ==
        "\"%x\" is not a signal (expected a name such as TERM, INT or HUP, or a number from 1 "
        "to 64)");
  CHECK(bad({"signal", "0", "web"}).message == "\"0\" is not a signal number (expected 1 to 64)");
  CHECK(bad({"signal", "99", "web"}).message == "\"99\" is not a signal number (expected 1 to 64)");
  CHECK(bad({"signal", "4294967297", "web"}).message ==
        "\"4294967297\" is not a signal number (expected 1 to 64)");
  CHECK(bad({"signal", "TREM", "web"}).message ==
        "\"TREM\" is not a signal (did you mean \"TERM\"?)");
  CHECK(bad({"signal", "SIGRTMIN+1", "web"}).message.rfind("\"SIGRTMIN+1\" is not a signal", 0) ==
        0);
  CHECK(bad({"logs"}).message == "'logs' needs a job name");
  CHECK(bad({"logs", "web", "db"}).message == "'logs' takes one job name");
  CHECK(bad({"logs", "-n", "x", "web"}).message ==
        "option '-n' needs a number of lines (0 or more), not 'x'");
  CHECK(bad({"logs", "web", "-n", "-1"}).message ==
        "option '-n' needs a number of lines (0 or more), not '-1'");
  CHECK(bad({"logs", "web", "-n"}).message == "option '-n' needs a number of lines");
  CHECK(bad({"logs", "-fx", "web"}).message == "option '-f' takes no value");
  CHECK(bad({"-s"}).message == "option '-s' needs a socket path");
  CHECK(bad({"--socket=", "status"}).message == "option '--socket' needs a socket path");
  CHECK(bad({"-c"}).message == "option '-c' needs a config file");
  CHECK(bad({"status", "--server-user"}).message ==
        "option '--server-user' needs a user name or uid");
  CHECK(bad({"--json=yes", "status"}).message == "option '--json' takes no value");
  CHECK(bad({"reload", "now"}).message == "'reload' takes no arguments");
  CHECK(bad({"events", "web"}).message == "'events' takes no arguments");
  CHECK(bad({"version", "x"}).message == "'version' takes no arguments");
  CHECK(bad({"help", "bogus"}).message == "unknown command 'bogus'");
  CHECK(bad({"help", "status", "logs"}).message == "'help' takes at most one command");
  CHECK(bad({"reopen_logs"}).message ==
        "unknown command 'reopen_logs' (did you mean 'reopen-logs'?)");
}

TEST_CASE("args: every request vigilctl builds passes the protocol's own checks") {
  const std::vector<std::vector<std::string>> lines = {
      {"status"},           {"status", "a", "b*"},
      {"start", "all"},     {"stop", "--no-wait", "a"},
      {"restart", "a"},     {"signal", "TERM", "a"},
      {"signal", "1", "a"}, {"logs", "-f", "-n", "3", "--stderr", "a"},
      {"events"},           {"reload"},
      {"reopen-logs"},      {"shutdown"},
      {"version"}};
  for (const auto& args : lines) {
    CAPTURE(args.front());
    const std::string line = wire(args);
    auto parsed = vigil::protocol::parse_request(line);
    CHECK(std::holds_alternative<vigil::protocol::Request>(parsed));
  }
}

TEST_CASE("args: the command table matches the protocol's, one to one") {
  std::set<std::string_view> used;
  for (const auto& c : ctl_commands()) {
    CAPTURE(c.name);
    CHECK(vigil::protocol::find_command(c.protocol) != nullptr);
    CHECK(used.insert(c.protocol).second);
    CHECK(find_ctl_command(c.name) == &c);
  }
  std::set<std::string_view> all;
  for (const auto& c : vigil::protocol::commands()) all.insert(c.name);
  CHECK(used == all);
}

TEST_CASE("help: the overview lists every command; each command has its own page") {
  const std::string overview = help_text("");
  CHECK(overview.rfind(
            "usage: vigilctl [-s SOCKET] [-c FILE] [--json] [--no-color] COMMAND [ARGS]\n", 0) ==
        0);
  for (const auto& c : ctl_commands()) {
    CAPTURE(c.name);
    CHECK(overview.find("\n  " + std::string(c.usage) + "  ") != std::string::npos);
    const std::string page = help_text(c.name);
    CHECK(page.rfind(
              "usage: vigilctl [-s SOCKET] [-c FILE] [--json] " + std::string(c.usage) + "\n\n",
              0) == 0);
  }
  CHECK(help_text("logs").find("  -n, --lines N     how many lines to show first") !=
        std::string::npos);
}
