// The job life cycle, transition by transition, against the fake clock and spawner.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "core_harness.h"
#include "handlers.h"

using namespace vigil;
using namespace vigil::test;
using Path = std::vector<std::string>;

TEST_CASE("backoff delay grows by factor and is capped at max") {
  config::Backoff b{1000ms, 60000ms, 2.0};
  CHECK(core::backoff_delay(b, 0) == 0ms);
  CHECK(core::backoff_delay(b, 1) == 1000ms);
  CHECK(core::backoff_delay(b, 2) == 2000ms);
  CHECK(core::backoff_delay(b, 3) == 4000ms);
  CHECK(core::backoff_delay(b, 6) == 32000ms);
  CHECK(core::backoff_delay(b, 7) == 60000ms);
  CHECK(core::backoff_delay(b, 1000) == 60000ms);  // no overflow on a long streak
  config::Backoff flat{500ms, 500ms, 1.0};
  CHECK(core::backoff_delay(flat, 9) == 500ms);
  config::Backoff none{0ms, 0ms, 2.0};
  CHECK(core::backoff_delay(none, 5) == 0ms);
}

TEST_CASE("stable_after is backoff.max, or start_seconds when longer") {
  auto s = job_spec("a");
  CHECK(core::stable_after(s) == 60000ms);
  s.start_seconds = 90000ms;
  CHECK(core::stable_after(s) == 90000ms);
}

TEST_CASE("autostart: stopped -> starting -> running after start_seconds") {
  World w;
  w.load({job_spec("web")});
  CHECK(w.state("web") == State::starting);
  CHECK(w.job("web").pid() == 100);
  CHECK(w.job("web").wanted_up());
  w.advance(999ms);
  CHECK(w.state("web") == State::starting);
  w.advance(1ms);
  CHECK(w.state("web") == State::running);
  CHECK(w.path("web") == Path{"starting", "running"});
  CHECK_FALSE(w.job("web").has_timer());  // idle: no timer armed while running
}

TEST_CASE("autostart false stays stopped with wanted down") {
  World w;
  auto s = job_spec("batch");
  s.autostart = false;
  w.load({s});
  CHECK(w.state("batch") == State::stopped);
  CHECK_FALSE(w.job("batch").wanted_up());
  CHECK(w.spawns.empty());
}

TEST_CASE("start_seconds 0 counts as running at once") {
  World w;
  auto s = job_spec("a");
  s.start_seconds = 0ms;
  w.load({s});
  CHECK(w.state("a") == State::running);
  CHECK(w.path("a") == Path{"starting", "running"});
}

TEST_CASE("an exit during start_seconds is a failed start: backoff, then fatal") {
  World w;
  auto s = job_spec("bad");
  s.start_retries = 2;
  w.load({s});
  w.advance(200ms);
  w.exit("bad", ExitStatus::code(1));
  CHECK(w.state("bad") == State::backoff);
  CHECK(w.job("bad").reason() == "exited with status 1 after 0.2s");
  CHECK(w.job("bad").failed_starts() == 1);
  // First retry after backoff.initial.
  w.advance(999ms);
  CHECK(w.spawns.size() == 1);
  w.advance(1ms);
  CHECK(w.spawns.size() == 2);
  CHECK(w.state("bad") == State::starting);
  w.exit("bad", ExitStatus::code(1));
  CHECK(w.state("bad") == State::backoff);
  // Second retry after initial * factor.
  w.advance(1999ms);
  CHECK(w.spawns.size() == 2);
  w.advance(1ms);
  CHECK(w.spawns.size() == 3);
  w.exit("bad", ExitStatus::code(1));
  // start_retries = 2: the first start and two retries have failed -> fatal.
  CHECK(w.state("bad") == State::fatal);
  CHECK(w.job("bad").reason() == "exited with status 1 after 0.0s (gave up after 3 attempts)");
  CHECK_FALSE(w.job("bad").has_timer());
  w.advance(3600s);
  CHECK(w.spawns.size() == 3);  // fatal is not retried
  CHECK(w.path("bad") ==
        Path{"starting", "backoff", "starting", "backoff", "starting", "fatal"});
}

TEST_CASE("start_retries 0 gives up after the first failed start") {
  World w;
  auto s = job_spec("once");
  s.start_retries = 0;
  w.load({s});
  w.exit("once", ExitStatus::code(3));
  CHECK(w.state("once") == State::fatal);
}

TEST_CASE("a spawn error is a failed start carrying its reason") {
  World w;
  w.fail_spawn["ghost"] = "cannot exec /nope: No such file or directory";
  auto s = job_spec("ghost");
  s.start_retries = 1;
  w.load({s});
  CHECK(w.state("ghost") == State::backoff);
  CHECK(w.job("ghost").reason() == "cannot exec /nope: No such file or directory");
  w.advance(1s);
  CHECK(w.state("ghost") == State::fatal);
  CHECK(w.job("ghost").reason() ==
        "cannot exec /nope: No such file or directory (gave up after 2 attempts)");
}

TEST_CASE("a fatal job is started again by a person, with fresh retries") {
  World w;
  auto s = job_spec("bad");
  s.start_retries = 0;
  w.load({s});
  w.exit("bad", ExitStatus::code(1));
  REQUIRE(w.state("bad") == State::fatal);
  w.sup.start(w.pick({"bad"}), w.now, w.fx);
  w.drain();
  CHECK(w.state("bad") == State::starting);
  CHECK(w.job("bad").failed_starts() == 0);
}

TEST_CASE("a successful run resets failed starts") {
  World w;
  w.load({job_spec("a")});
  w.exit("a", ExitStatus::code(1));
  w.advance(1s);  // respawn
  CHECK(w.job("a").failed_starts() == 1);
  w.advance(1s);  // start_seconds passed
  CHECK(w.state("a") == State::running);
  CHECK(w.job("a").failed_starts() == 0);
}

TEST_CASE("restart policy after a counted start") {
  SUBCASE("on-failure restarts a failure and leaves a success exited") {
    World w;
    w.load({job_spec("a")});
    w.advance(2min);
    w.exit("a", ExitStatus::code(0));
    CHECK(w.state("a") == State::exited);
    CHECK(w.job("a").reason().empty());
    CHECK(w.job("a").last_exit() == ExitStatus::code(0));
    w.sup.start(w.pick({"a"}), w.now, w.fx);
    w.drain();
    w.advance(2min);
    w.exit("a", ExitStatus::code(2));
    CHECK(w.state("a") == State::starting);  // stable run: restarted at once
    CHECK(w.job("a").restarts() == 1);
  }
  SUBCASE("success_exit_codes decide what a failure is") {
    World w;
    auto s = job_spec("a");
    s.success_exit_codes = {0, 2};
    w.load({s});
    w.advance(2min);
    w.exit("a", ExitStatus::code(2));
    CHECK(w.state("a") == State::exited);
  }
  SUBCASE("a signal is never a success") {
    World w;
    w.load({job_spec("a")});
    w.advance(2min);
    w.exit("a", ExitStatus::signal(9));
    CHECK(w.state("a") == State::starting);
    CHECK(w.job("a").last_exit() == ExitStatus::signal(9));
  }
  SUBCASE("always restarts a success") {
    World w;
    auto s = job_spec("a");
    s.restart = config::RestartPolicy::always;
    w.load({s});
    w.advance(2min);
    w.exit("a", ExitStatus::code(0));
    CHECK(w.state("a") == State::starting);
  }
  SUBCASE("never leaves a failure exited, with its reason") {
    World w;
    auto s = job_spec("a");
    s.restart = config::RestartPolicy::never;
    w.load({s});
    w.advance(2min);
    w.exit("a", ExitStatus::code(4));
    CHECK(w.state("a") == State::exited);
    CHECK(w.job("a").reason() == "exited with status 4 after 2m00s");
    CHECK(w.job("a").wanted_up());  // still wanted: a start brings it back
  }
}

TEST_CASE("a one-shot that succeeds within start_seconds is exited, not failed") {
  World w;
  auto s = job_spec("migrate");
  s.restart = config::RestartPolicy::never;
  w.load({s});
  w.exit("migrate", ExitStatus::code(0));
  CHECK(w.state("migrate") == State::exited);
  CHECK(w.job("migrate").failed_starts() == 0);
}

TEST_CASE("a job crashing soon after counting as started backs off, and stability resets") {
  World w;
  auto s = job_spec("flaky");
  s.backoff = {1s, 8s, 2.0};  // stable after 8s of running
  w.load({s});
  std::vector<std::chrono::milliseconds> delays;
  for (int i = 0; i < 5; ++i) {
    w.advance(3s);  // counted as started (1s), then crashes at 3s
    REQUIRE(w.state("flaky") == State::running);
    w.exit("flaky", ExitStatus::code(1));
    REQUIRE(w.state("flaky") == State::backoff);
    delays.push_back(w.timers.at("flaky") - w.now.mono);
    w.advance(delays.back());
    REQUIRE(w.state("flaky") == State::starting);
  }
  CHECK(delays == std::vector<std::chrono::milliseconds>{1s, 2s, 4s, 8s, 8s});
  CHECK(w.job("flaky").failed_starts() == 0);  // never fatal: each run counted as started
  // A stable run wipes the slate: the next crash restarts at once.
  w.advance(8s);
  w.exit("flaky", ExitStatus::code(1));
  CHECK(w.state("flaky") == State::starting);
  w.advance(3s);
  w.exit("flaky", ExitStatus::code(1));
  CHECK(w.timers.at("flaky") - w.now.mono == 1s);
}

TEST_CASE("stop: signal, then SIGKILL after stop_timeout, to the group when kill_group") {
  World w;
  auto s = job_spec("web");
  s.stop_signal = 2;  // INT
  s.stop_timeout = 5s;
  w.load({s});
  w.advance(2s);
  const pid_t pid = w.job("web").pid();
  w.sup.stop(w.pick({"web"}), w.now, w.fx);
  w.drain();
  CHECK(w.state("web") == State::stopping);
  CHECK_FALSE(w.job("web").wanted_up());
  REQUIRE(w.kills.size() == 2);
  CHECK(w.kills[0].pid == pid);
  CHECK(w.kills[0].signo == 2);
  CHECK(w.kills[0].group);
  CHECK(w.kills[1].signo == 18);  // CONT, so a stopped process can act on INT
  CHECK(w.kills[1].group);
  w.advance(4999ms);
  CHECK(w.kills.size() == 2);
  w.advance(1ms);
  REQUIRE(w.kills.size() == 3);
  CHECK(w.kills[2].signo == 9);
  CHECK(w.kills[2].group);
  w.exit("web", ExitStatus::signal(9));
  CHECK(w.state("web") == State::stopped);
  CHECK(w.job("web").reason() == "did not stop within 5s, killed");
  CHECK_FALSE(w.job("web").has_timer());
  CHECK(w.path("web") == Path{"starting", "running", "stopping", "stopped"});
}

TEST_CASE("stop_signal KILL needs no CONT") {
  World w;
  auto s = job_spec("a");
  s.stop_signal = 9;
  w.load({s});
  w.sup.stop(w.pick({"a"}), w.now, w.fx);
  w.drain();
  REQUIRE(w.kills.size() == 1);
  CHECK(w.kills[0].signo == 9);
}

TEST_CASE("kill_group false signals only the leader") {
  World w;
  auto s = job_spec("a");
  s.kill_group = false;
  w.load({s});
  w.sup.stop(w.pick({"a"}), w.now, w.fx);
  w.drain();
  REQUIRE(w.kills.size() == 2);  // TERM, CONT
  CHECK_FALSE(w.kills[0].group);
  CHECK_FALSE(w.kills[1].group);
  w.exit("a", ExitStatus::signal(15));
  CHECK(w.kills.size() == 2);  // no sweep of the group either
}

TEST_CASE("the leader's exit sweeps its process group with SIGKILL") {
  World w;
  w.load({job_spec("a")});
  const pid_t pid = w.job("a").pid();
  w.exit("a", ExitStatus::code(1));
  REQUIRE(w.kills.size() == 1);
  CHECK(w.kills[0].pid == pid);
  CHECK(w.kills[0].signo == 9);
  CHECK(w.kills[0].group);
}

TEST_CASE("stop during backoff cancels the retry") {
  World w;
  w.load({job_spec("a")});
  w.exit("a", ExitStatus::code(1));
  REQUIRE(w.state("a") == State::backoff);
  w.sup.stop(w.pick({"a"}), w.now, w.fx);
  w.drain();
  CHECK(w.state("a") == State::stopped);
  CHECK(w.timers.empty());
  w.advance(1h);
  CHECK(w.spawns.size() == 1);
}

TEST_CASE("start during backoff spawns at once") {
  World w;
  w.load({job_spec("a")});
  w.exit("a", ExitStatus::code(1));
  w.sup.start(w.pick({"a"}), w.now, w.fx);
  w.drain();
  CHECK(w.state("a") == State::starting);
  CHECK(w.spawns.size() == 2);
}

TEST_CASE("restart: stop, then a fresh start once the process is gone") {
  World w;
  w.load({job_spec("a")});
  w.advance(2s);
  w.sup.restart(w.pick({"a"}), w.now, w.fx);
  w.drain();
  CHECK(w.state("a") == State::stopping);
  CHECK(w.job("a").wanted_up());
  w.exit("a", ExitStatus::signal(15));
  CHECK(w.state("a") == State::starting);
  CHECK(w.job("a").pid() == 101);
  CHECK(w.path("a") == Path{"starting", "running", "stopping", "stopped", "starting"});
}

TEST_CASE("start while stopping comes back up after the stop") {
  World w;
  w.load({job_spec("a")});
  w.sup.stop(w.pick({"a"}), w.now, w.fx);
  w.sup.start(w.pick({"a"}), w.now, w.fx);
  w.drain();
  CHECK(w.state("a") == State::stopping);
  w.exit("a", ExitStatus::signal(15));
  CHECK(w.state("a") == State::starting);
}

TEST_CASE("stale timers and unknown pids change nothing") {
  World w;
  w.load({job_spec("a")});
  w.advance(2s);
  const auto before = w.changes.size();
  w.sup.timer_fired("a", w.now, w.fx);  // no timer armed while running
  w.drain();
  CHECK(w.changes.size() == before);
  CHECK_FALSE(w.sup.child_exited(4242, ExitStatus::code(0), w.now, w.fx));
  CHECK_FALSE(w.sup.timer_fired("nope", w.now, w.fx));
}

TEST_CASE("state changes carry the pid that exited and the exit") {
  World w;
  w.load({job_spec("a")});
  w.exit("a", ExitStatus::code(7));
  const auto& c = w.changes.back();
  CHECK(c.from == State::starting);
  CHECK(c.to == State::backoff);
  CHECK(c.pid == 100);
  REQUIRE(c.exit.has_value());
  CHECK(*c.exit == ExitStatus::code(7));
  CHECK(c.reason == "exited with status 7 after 0.0s");
}

TEST_CASE("status object carries every field of the contract") {
  World w;
  w.load({job_spec("web")});
  w.advance(1500ms);
  auto j = core::status_json(w.job("web"), w.now);
  CHECK(j["name"] == "web");
  CHECK(j["state"] == "running");
  CHECK(j["wanted"] == "up");
  CHECK(j["pid"] == 100);
  CHECK(j["since"] == doctest::Approx(1'700'000'001.0));
  CHECK(j["uptime"] == doctest::Approx(1.5));
  CHECK(j["restarts"] == 0);
  CHECK(j["last_exit"].is_null());
  CHECK(j["reason"].is_null());
  CHECK(j["stdout"] == "/log/web.out.log");
  CHECK(j["stderr"] == "/log/web.err.log");
  CHECK(j["command"] == core::json::array({"/bin/true"}));
  w.sup.stop(w.pick({"web"}), w.now, w.fx);
  w.drain();
  w.exit("web", ExitStatus::signal(15));
  j = core::status_json(w.job("web"), w.now);
  CHECK(j["pid"].is_null());
  CHECK(j["uptime"].is_null());
  CHECK(j["last_exit"] == core::json{{"signal", "TERM"}});
}

namespace {

// The status object as vigild made it before it wrote the text itself: a json tree of the
// same members, dumped. The text must be the same, byte for byte.
std::string status_as_dumped(const core::Job& job, const core::Instant& now,
                             const std::string& log_error) {
  using core::json;
  const auto path = [](const config::Output& o) {
    return o.kind == config::Output::Kind::file ? json(o.path) : json(nullptr);
  };
  const auto& spec = job.spec();
  json j;
  j["name"] = job.name();
  j["state"] = core::to_string(job.state());
  j["wanted"] = job.wanted_up() ? "up" : "down";
  j["pid"] = job.pid() > 0 ? json(job.pid()) : json(nullptr);
  j["since"] = std::round(job.since() * 1000.0) / 1000.0;
  auto up = job.uptime(now);
  j["uptime"] = up && job.state() == State::running
                    ? json(static_cast<double>(up->count()) / 1000.0)
                    : json(nullptr);
  j["restarts"] = job.restarts();
  j["last_exit"] = core::exit_json(job.last_exit());
  j["reason"] = job.reason().empty() ? json(nullptr) : json(job.reason());
  j["stdout"] = path(spec.stdout_log);
  j["stderr"] =
      path(spec.stderr_log.kind == config::Output::Kind::merge ? spec.stdout_log : spec.stderr_log);
  j["command"] = spec.argv;
  j["log_error"] = log_error.empty() ? json(nullptr) : json(log_error);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string status_text(const core::Job& job, const core::Instant& now,
                        const std::string& log_error) {
  std::string out;
  core::append_status_json(out, job, now, log_error);
  return out;
}

}  // namespace

TEST_CASE("status text is what dumping the json tree wrote, byte for byte") {
  World w;
  auto odd = job_spec("we\"ird\tname\x01 caf\xc3\xa9 \xff");
  odd.argv = {"/bin/sh", "-c", "echo \"hi\" \\ there\n", "", "\xe2\x82"};
  odd.stdout_log = {config::Output::Kind::file, "/log/odd \"out\".log"};
  odd.stderr_log = {config::Output::Kind::merge, ""};
  auto quiet = job_spec("quiet");
  quiet.stdout_log = {config::Output::Kind::discard, ""};
  quiet.stderr_log = {config::Output::Kind::discard, ""};
  w.fail_spawn["broken"] = "no such file: \"/nope\"\n\x7f";
  w.load({job_spec("web"), odd, quiet, job_spec("broken")});
  w.advance(1234ms);

  const auto all_match = [&](const std::string& log_error) {
    for (const char* name : {"web", "quiet", "broken"}) {
      CHECK_MESSAGE(status_text(w.job(name), w.now, log_error) ==
                        status_as_dumped(w.job(name), w.now, log_error),
                    name);
    }
    CHECK(status_text(w.job(odd.name), w.now, log_error) ==
          status_as_dumped(w.job(odd.name), w.now, log_error));
  };
  all_match("");
  all_match("cannot write /log/web.out.log: no space left (12 bytes dropped so far)");
  all_match("bad \xc3 \"byte\"");

  w.exit("web", ExitStatus::code(3));  // exited, restarting with a reason
  w.sup.stop(w.pick({"quiet"}), w.now, w.fx);
  w.drain();
  w.exit("quiet", ExitStatus::signal(9));
  w.advance(100ms);
  all_match("");

  // As json, the same members: the log's health among them.
  auto j = core::status_json(w.job("web"), w.now, "disk full");
  CHECK(j["log_error"] == "disk full");
  CHECK(j.size() == 13);
}

TEST_CASE("a status object with some members only is the full one less the others") {
  World w;
  w.load({job_spec("web"), job_spec("db")});
  w.advance(1500ms);
  w.exit("db", ExitStatus::code(2));
  w.advance(10ms);
  for (const char* name : {"web", "db"}) {
    const core::json full = core::status_json(w.job(name), w.now, "disk full");
    for (const auto& wanted : std::vector<std::vector<std::string>>{
             {"name"},
             {"wanted"},
             {"command"},
             {"name", "state", "pid", "uptime", "restarts", "reason", "last_exit", "log_error"},
             {"stdout", "stderr", "since"},
             {}}) {
      core::StatusMembers members = 0;
      core::json expected = core::json::object();
      for (const auto& m : wanted) {
        auto bit = core::status_member(m);
        REQUIRE(bit);
        members |= *bit;
        expected[m] = full[m];
      }
      std::string text;
      core::append_status_json(text, w.job(name), w.now, "disk full", members);
      CHECK_MESSAGE(core::json::parse(text) == expected, text);
    }
  }
  CHECK_FALSE(core::status_member("nope"));
  CHECK_FALSE(core::status_member(""));
  // Every member is named, once, in the order of the object.
  std::string all;
  core::append_status_json(all, w.job("web"), w.now, "", core::kAllStatusMembers);
  std::string names;
  const core::json parsed = core::json::parse(all);
  for (const auto& [key, value] : parsed.items()) {
    names += (names.empty() ? "" : ", ") + key;
    CHECK(core::status_member(key));
  }
  CHECK(names == core::status_member_names());
}

TEST_CASE("stderr merged into stdout reports the stdout path for both") {
  World w;
  auto s = job_spec("m");
  s.stderr_log = {config::Output::Kind::merge, ""};
  s.stdout_log = {config::Output::Kind::discard, ""};
  w.load({s});
  auto j = core::status_json(w.job("m"), w.now);
  CHECK(j["stdout"].is_null());
  CHECK(j["stderr"].is_null());
}
