// Unit tests of the scalar value parsers in config/values.h: durations, sizes, modes,
// signals, ${VAR} expansion, "did you mean" and the quoting used in messages. Failures
// are checked by their exact text, which is what users read.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "values.h"

using namespace vigil::config;
using namespace std::chrono_literals;

namespace {

// The value of a successful parse; fails the test (and returns T{}) otherwise.
template <typename T>
T ok(const Parsed<T>& parsed) {
  if (const auto* error = std::get_if<ParseError>(&parsed)) {
    FAIL_CHECK("unexpected error: " << error->message);
    return T{};
  }
  return std::get<T>(parsed);
}

// The message of a failed parse; fails the test (and returns "") otherwise.
template <typename T>
std::string error(const Parsed<T>& parsed) {
  if (const auto* e = std::get_if<ParseError>(&parsed)) return e->message;
  FAIL_CHECK("expected an error");
  return "";
}

std::function<std::optional<std::string>(std::string_view)> vars(
    std::map<std::string, std::string> values) {
  return [values](std::string_view name) -> std::optional<std::string> {
    auto it = values.find(std::string(name));
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("parse_duration accepts seconds and units") {
  CHECK(ok(parse_duration("0")) == 0ms);
  CHECK(ok(parse_duration("3")) == 3000ms);
  CHECK(ok(parse_duration("0.25")) == 250ms);
  CHECK(ok(parse_duration("1.5")) == 1500ms);
  CHECK(ok(parse_duration(".5")) == 500ms);
  CHECK(ok(parse_duration("250ms")) == 250ms);
  CHECK(ok(parse_duration("10s")) == 10000ms);
  CHECK(ok(parse_duration("1.5s")) == 1500ms);
  CHECK(ok(parse_duration("2m")) == 120000ms);
  CHECK(ok(parse_duration("1h")) == 3600000ms);
  CHECK(ok(parse_duration("1m30s")) == 90000ms);
  CHECK(ok(parse_duration("1h 30m")) == 5400000ms);
  CHECK(ok(parse_duration("10 s")) == 10000ms);
  CHECK(ok(parse_duration(" 10s ")) == 10000ms);
  CHECK(ok(parse_duration("+5s")) == 5000ms);
  CHECK(ok(parse_duration("1.0005s")) == 1001ms);  // rounded to the millisecond
  CHECK(ok(parse_duration("8760h")) == 31536000000ms);
}

TEST_CASE("parse_duration rejects what is not a duration, saying what was expected") {
  const std::string expected =
      " is not a duration (expected seconds, or a number with ms, s, m or h)";
  CHECK(error(parse_duration("10 parsecs")) == "\"10 parsecs\"" + expected);
  CHECK(error(parse_duration("")) == "\"\"" + expected);
  CHECK(error(parse_duration("s")) == "\"s\"" + expected);
  CHECK(error(parse_duration("10sec")) == "\"10sec\"" + expected);
  CHECK(error(parse_duration("1e3")) == "\"1e3\"" + expected);
  CHECK(error(parse_duration("30s1m")) == "\"30s1m\"" + expected);  // units must decrease
  CHECK(error(parse_duration("1s1s")) == "\"1s1s\"" + expected);
  CHECK(error(parse_duration("1m 30")) == "\"1m 30\"" + expected);
  CHECK(error(parse_duration("10S")) == "\"10S\"" + expected);
  CHECK(error(parse_duration(".inf")) == "\".inf\"" + expected);
  CHECK(error(parse_duration("-")) == "\"-\"" + expected);
  CHECK(error(parse_duration("-5s")) ==
        "\"-5s\" is negative (expected a duration of zero or more)");
  CHECK(error(parse_duration("-1")) == "\"-1\" is negative (expected a duration of zero or more)");
  CHECK(error(parse_duration("8761h")) == "\"8761h\" is too long (expected at most 8760h, a year)");
  CHECK(error(parse_duration(std::string(5000, '9')))
            .ends_with(" is too long (expected at most 8760h, a year)"));
}

TEST_CASE("format_duration is readable and parses back") {
  CHECK(format_duration(0ms) == "0ms");
  CHECK(format_duration(250ms) == "250ms");
  CHECK(format_duration(1000ms) == "1s");
  CHECK(format_duration(1500ms) == "1.5s");
  CHECK(format_duration(1250ms) == "1.25s");
  CHECK(format_duration(10000ms) == "10s");
  CHECK(format_duration(60000ms) == "1m");
  CHECK(format_duration(90000ms) == "1m30s");
  CHECK(format_duration(3600000ms) == "1h");
  CHECK(format_duration(3723004ms) == "1h2m3.004s");
  CHECK(format_duration(-1500ms) == "-1.5s");
  for (auto d : {0ms, 1ms, 999ms, 1001ms, 59999ms, 3600001ms, 86400000ms}) {
    CAPTURE(d.count());
    CHECK(ok(parse_duration(format_duration(d))) == d);
  }
}

TEST_CASE("parse_size accepts bytes and binary units") {
  CHECK(ok(parse_size("0")) == 0);
  CHECK(ok(parse_size("1024")) == 1024);
  CHECK(ok(parse_size("100B")) == 100);
  CHECK(ok(parse_size("10KiB")) == 10 * 1024);
  CHECK(ok(parse_size("10MiB")) == 10 * 1024 * 1024);
  CHECK(ok(parse_size("1GiB")) == 1024ULL * 1024 * 1024);
  CHECK(ok(parse_size("2TiB")) == 2ULL << 40);
  CHECK(ok(parse_size("10K")) == 10 * 1024);
  CHECK(ok(parse_size("10M")) == 10 * 1024 * 1024);
  CHECK(ok(parse_size("1G")) == 1024ULL * 1024 * 1024);
  CHECK(ok(parse_size("10KB")) == 10 * 1024);
  CHECK(ok(parse_size("10MB")) == 10 * 1024 * 1024);
  CHECK(ok(parse_size("1GB")) == 1024ULL * 1024 * 1024);
  CHECK(ok(parse_size("10 MiB")) == 10 * 1024 * 1024);
  CHECK(ok(parse_size("10mib")) == 10 * 1024 * 1024);
  CHECK(ok(parse_size("1.5MiB")) == 1572864);
  CHECK(ok(parse_size("18446744073709551615")) == 18446744073709551615ULL);
  CHECK(ok(parse_size("16777215TiB")) == 16777215ULL << 40);
  // Every unit the messages name is accepted, up to the one "too large" is counted in.
  CHECK(ok(parse_size("3PiB")) == 3ULL << 50);
  CHECK(ok(parse_size("2P")) == 2ULL << 50);
  CHECK(ok(parse_size("15EiB")) == 15ULL << 60);
  CHECK(ok(parse_size("1eb")) == 1ULL << 60);
  CHECK(ok(parse_size("15.5EiB")) == 31ULL << 59);
}

TEST_CASE("parse_size rejects what is not a size") {
  const std::string expected =
      " is not a size (expected bytes, or a number with KiB, MiB, GiB, TiB, PiB or EiB)";
  CHECK(error(parse_size("10 parsecs")) == "\"10 parsecs\"" + expected);
  CHECK(error(parse_size("")) == "\"\"" + expected);
  CHECK(error(parse_size("MiB")) == "\"MiB\"" + expected);
  CHECK(error(parse_size("10XB")) == "\"10XB\"" + expected);
  CHECK(error(parse_size("1.5")) == "\"1.5\"" + expected);  // a fraction of a byte
  CHECK(error(parse_size("0x10")) == "\"0x10\"" + expected);
  CHECK(error(parse_size("-1MiB")) == "\"-1MiB\" is negative (expected a size of zero or more)");
  CHECK(error(parse_size("18446744073709551616")) ==
        "\"18446744073709551616\" is too large (expected less than 16 EiB)");
  CHECK(error(parse_size("16777216TiB")) ==
        "\"16777216TiB\" is too large (expected less than 16 EiB)");
  CHECK(error(parse_size("16777216.5TiB")) ==
        "\"16777216.5TiB\" is too large (expected less than 16 EiB)");
  CHECK(error(parse_size("16EiB")) == "\"16EiB\" is too large (expected less than 16 EiB)");
  CHECK(error(parse_size("1e6")) == "\"1e6\"" + expected);
}

TEST_CASE("parse_mode reads octal modes up to 0777") {
  CHECK(ok(parse_mode("0022")) == 0022);
  CHECK(ok(parse_mode("022")) == 0022);
  CHECK(ok(parse_mode("750")) == 0750);
  CHECK(ok(parse_mode("0")) == 0);
  CHECK(ok(parse_mode("0777")) == 0777);
  CHECK(ok(parse_mode("0600")) == 0600);  // what yaml-cpp hands over for an unquoted 0600
  CHECK(ok(parse_mode("0o750")) == 0750);
  CHECK(ok(parse_mode("00000750")) == 0750);
  CHECK(error(parse_mode("0999")) == "\"0999\" is not an octal mode");
  CHECK(error(parse_mode("")) == "\"\" is not an octal mode");
  CHECK(error(parse_mode("rwx")) == "\"rwx\" is not an octal mode");
  CHECK(error(parse_mode("-022")) == "\"-022\" is not an octal mode");
  CHECK(error(parse_mode("0o")) == "\"0o\" is not an octal mode");
  CHECK(error(parse_mode("0x1ff")) == "\"0x1ff\" is not an octal mode");
  CHECK(error(parse_mode("1777")) ==
        "\"1777\" is out of range (expected an octal mode of at most 0777)");
  CHECK(error(parse_mode("77777777777777777777777")) ==
        "\"77777777777777777777777\" is out of range (expected an octal mode of at most 0777)");
  CHECK(error(parse_mode("77777777777777777779")) ==
        "\"77777777777777777779\" is not an octal mode");
}

TEST_CASE("parse_signal accepts names with or without SIG, any case, and numbers") {
  CHECK(ok(parse_signal("TERM")) == 15);
  CHECK(ok(parse_signal("SIGTERM")) == 15);
  CHECK(ok(parse_signal("term")) == 15);
  CHECK(ok(parse_signal("sigterm")) == 15);
  CHECK(ok(parse_signal("KILL")) == 9);
  CHECK(ok(parse_signal("HUP")) == 1);
  CHECK(ok(parse_signal("INT")) == 2);
  CHECK(ok(parse_signal("QUIT")) == 3);
  CHECK(ok(parse_signal("USR1")) == 10);
  CHECK(ok(parse_signal("USR2")) == 12);
  CHECK(ok(parse_signal("WINCH")) == 28);
  CHECK(ok(parse_signal("IOT")) == 6);
  CHECK(ok(parse_signal("15")) == 15);
  CHECK(ok(parse_signal("1")) == 1);
  CHECK(ok(parse_signal("64")) == 64);
  CHECK(error(parse_signal("TREM")) == "\"TREM\" is not a signal (did you mean \"TERM\"?)");
  CHECK(error(parse_signal("SIGKILLL")) == "\"SIGKILLL\" is not a signal (did you mean \"KILL\"?)");
  CHECK(error(parse_signal("FOO")) ==
        "\"FOO\" is not a signal (expected a name such as TERM, INT or HUP, or a number from 1 "
        "to 64)");
  CHECK(error(parse_signal("")) ==
        "\"\" is not a signal (expected a name such as TERM, INT or HUP, or a number from 1 to "
        "64)");
  CHECK(error(parse_signal("SIG")) ==
        "\"SIG\" is not a signal (expected a name such as TERM, INT or HUP, or a number from 1 "
        "to 64)");
  CHECK(error(parse_signal("0")) == "\"0\" is not a signal number (expected 1 to 64)");
  CHECK(error(parse_signal("65")) == "\"65\" is not a signal number (expected 1 to 64)");
  CHECK(error(parse_signal("99999999999999999999")) ==
        "\"99999999999999999999\" is not a signal number (expected 1 to 64)");
  CHECK(error(parse_signal("-9")).starts_with("\"-9\" is not a signal"));
}

TEST_CASE("signal_name gives the short name, or the number") {
  CHECK(signal_name(15) == "TERM");
  CHECK(signal_name(9) == "KILL");
  CHECK(signal_name(1) == "HUP");
  CHECK(signal_name(6) == "ABRT");  // not IOT
  CHECK(signal_name(29) == "IO");   // not POLL
  CHECK(signal_name(40) == "40");
  CHECK(signal_name(0) == "0");
  for (int signo = 1; signo <= 31; ++signo) {
    CAPTURE(signo);
    CHECK(ok(parse_signal(signal_name(signo))) == signo);
  }
}

TEST_CASE("expand substitutes ${VAR} and ${VAR:-default}") {
  const auto env = vars({{"HOME", "/home/me"}, {"EMPTY", ""}, {"PORT", "8000"}});
  CHECK(ok(expand("plain text", env)) == "plain text");
  CHECK(ok(expand("", env)) == "");
  CHECK(ok(expand("${HOME}", env)) == "/home/me");
  CHECK(ok(expand("${HOME}/logs/${PORT}.log", env)) == "/home/me/logs/8000.log");
  CHECK(ok(expand("x${EMPTY}y", env)) == "xy");
  CHECK(ok(expand("${UNSET:-fallback}", env)) == "fallback");
  CHECK(ok(expand("${UNSET:-}", env)) == "");
  CHECK(ok(expand("${PORT:-9000}", env)) == "8000");
  CHECK(ok(expand("${EMPTY:-used when empty}", env)) == "used when empty");  // like the shell
  CHECK(ok(expand("${UNSET:-${HOME}/app}", env)) == "/home/me/app");
  CHECK(ok(expand("${UNSET:-${ALSO_UNSET:-deep}}", env)) == "deep");
  CHECK(ok(expand("${UNSET:-a$$b}", env)) == "a$b");
  CHECK(ok(expand("${UNSET:-{braces\\}}", env)) == "{braces\\}");
  CHECK(ok(expand("$$", env)) == "$");
  CHECK(ok(expand("$${HOME}", env)) == "${HOME}");
  CHECK(ok(expand("cost: $$5", env)) == "cost: $5");
  CHECK(ok(expand("$HOME stays for the shell", env)) == "$HOME stays for the shell");
  CHECK(ok(expand("ends with $", env)) == "ends with $");
  CHECK(ok(expand("$1 $@ $", env)) == "$1 $@ $");
  CHECK(ok(expand("${HOME}${PORT}", env)) == "/home/me8000");
  CHECK(ok(expand("${_UNDERSCORE_1:-ok}", env)) == "ok");
}

TEST_CASE("expand reports unset variables and malformed references") {
  const auto env = vars({{"HOME", "/home/me"}});
  CHECK(error(expand("${NOPE}", env)) ==
        "${NOPE} is not set in the environment (write ${NOPE:-default} to give a default)");
  CHECK(error(expand("/srv/${APP}/bin", env)) ==
        "${APP} is not set in the environment (write ${APP:-default} to give a default)");
  CHECK(error(expand("${UNSET:-${NOPE}}", env)) ==
        "${NOPE} is not set in the environment (write ${NOPE:-default} to give a default)");
  const std::string help = " (expected ${NAME} or ${NAME:-default}; write $$ for a literal $)";
  CHECK(error(expand("${HOME", env)) == "\"${HOME\" is missing its closing }" + help);
  CHECK(error(expand("x ${", env)) == "\"${\" is missing its closing }" + help);
  CHECK(error(expand("${UNSET:-abc", env)) == "\"${UNSET:-abc\" is missing its closing }" + help);
  CHECK(error(expand("${}", env)) == "\"${}\" is not a variable reference" + help);
  CHECK(error(expand("${1abc}/x", env)) == "\"${1abc}\" is not a variable reference" + help);
  CHECK(error(expand("${HOME-x}", env)) == "\"${HOME-x}\" is not a variable reference" + help);
  CHECK(error(expand("${A B}", env)) == "\"${A B}\" is not a variable reference" + help);
  std::string deep;
  for (int i = 0; i < 20; ++i) deep += "${U:-";
  deep += "x" + std::string(20, '}');
  CHECK(error(expand(deep, env)) == "${...} defaults are nested too deeply (at most 8 levels)");
  // A default that is not used is not expanded, as in the shell.
  CHECK(ok(expand("${HOME:-${NOPE}}", env)) == "/home/me");
}

TEST_CASE("expand without a lookup treats every variable as unset") {
  CHECK(ok(expand("${X:-d}", {})) == "d");
  CHECK(error(expand("${X}", {})) ==
        "${X} is not set in the environment (write ${X:-default} to give a default)");
}

TEST_CASE("did_you_mean suggests close candidates only") {
  const std::vector<std::string> keys = {"command",   "cwd",     "stdout",        "stderr",
                                         "autostart", "restart", "start_seconds", "start_retries"};
  CHECK(did_you_mean("comand", keys) == "command");
  CHECK(did_you_mean("commmand", keys) == "command");
  CHECK(did_you_mean("Command", keys) == "command");  // case is ignored
  CHECK(did_you_mean("stdotu", keys) == "stdout");    // a transposition is one edit
  CHECK(did_you_mean("stder", keys) == "stderr");
  CHECK(did_you_mean("cdw", keys) == "cwd");
  CHECK(did_you_mean("start_second", keys) == "start_seconds");
  CHECK(did_you_mean("autostrat", keys) == "autostart");
  CHECK(did_you_mean("restarts", keys) == "restart");
  CHECK(did_you_mean("xyzzy", keys) == std::nullopt);
  CHECK(did_you_mean("workdir", keys) == std::nullopt);
  CHECK(did_you_mean("logfile", keys) == std::nullopt);
  CHECK(did_you_mean("anything", {}) == std::nullopt);
  // Ties go to the first candidate.
  CHECK(did_you_mean("ab", {"xb", "ax"}) == "xb");
}

TEST_CASE("quote and printable keep messages on one readable line") {
  CHECK(quote("maybe") == "\"maybe\"");
  CHECK(quote("") == "\"\"");
  CHECK(quote("say \"hi\"") == "\"say \\\"hi\\\"\"");
  CHECK(quote("a\\b") == "\"a\\\\b\"");
  CHECK(quote("line\nnext\ttab\r") == "\"line\\nnext\\ttab\\r\"");
  CHECK(quote(std::string("nul\0byte", 8)) == "\"nul\\x00byte\"");
  CHECK(quote("bad \xff byte") == "\"bad \\xff byte\"");
  CHECK(quote("café ∞") == "\"café ∞\"");
  CHECK(quote(std::string(100, 'x')) == "\"" + std::string(80, 'x') + "...\"");
  CHECK(printable("jobs") == "jobs");
  CHECK(printable("a\nb") == "a\\nb");
}
