// What a job leaves beyond its leader's process group (Job::strays_found): stops reach it,
// kill_group kills it with its leader, and without kill_group it holds the next start.
#include <doctest/doctest.h>

#include "core_harness.h"

using namespace vigil;
using namespace vigil::test;
using Pids = std::vector<pid_t>;
using core::Stray;

namespace {

constexpr int kTerm = 15, kKill = 9, kCont = 18;

void found(World& w, const std::string& job, Pids current, std::vector<Stray> leftovers = {}) {
  REQUIRE(w.sup.strays_found(job, std::move(current), std::move(leftovers), w.now, w.fx));
  w.drain();
}

// The signals sent to strays of `job`, as (signal, pids) in order.
std::vector<std::pair<int, Pids>> stray_signals(const World& w, const std::string& job) {
  std::vector<std::pair<int, Pids>> out;
  for (const auto& k : w.stray_kills) {
    if (k.job == job) out.emplace_back(k.signo, k.pids);
  }
  return out;
}

using Signals = std::vector<std::pair<int, Pids>>;

// Job "e", running with `stop_timeout`, found to have left pid 700 outside its group.
void escaped(World& w, std::chrono::milliseconds stop_timeout) {
  auto s = job_spec("e");
  s.stop_timeout = stop_timeout;
  w.load({s});
  w.advance(1s);
  found(w, "e", {700});
}

// Job "d" of a program that daemonizes itself, with restart: never.
config::JobSpec daemon_spec(bool kill_group) {
  auto s = job_spec("d");
  s.kill_group = kill_group;
  s.restart = config::RestartPolicy::never;
  return s;
}

// Its main process daemonizes: it is found leaving `left` outside its group, then exits 0.
void daemonize(World& w, const config::JobSpec& s, Pids left) {
  w.load({s});
  w.advance(100ms);
  found(w, "d", std::move(left));
  w.exit("d", ExitStatus::code(0));
}

core::Outcome start_outcome(World& w, const std::string& name) {
  auto jobs = w.pick({name});
  w.sup.start(jobs, w.now, w.fx);
  w.sup.wait_for(jobs, core::Goal::up, w.fx);
  w.drain();
  REQUIRE_FALSE(w.replies.empty());
  auto o = w.replies.back().outcomes.at(0);
  return o;
}

}  // namespace

TEST_CASE(
    "a stop signals what left the group with the group, and waits for it up to stop_timeout") {
  World w;
  escaped(w, 5s);
  CHECK(w.job("e").reason().empty());  // part of the running job, nothing to say
  auto jobs = w.pick({"e"});
  w.sup.stop(jobs, w.now, w.fx);
  w.sup.wait_for(jobs, core::Goal::down, w.fx);
  w.drain();
  CHECK(stray_signals(w, "e") == Signals{{kTerm, {700}}, {kCont, {700}}});
  // Found during the stop: it gets the stop signal at once.
  found(w, "e", {700, 701});
  CHECK(stray_signals(w, "e") ==
        Signals{{kTerm, {700}}, {kCont, {700}}, {kTerm, {701}}, {kCont, {701}}});
  // The leader goes: the job is stopping until what left the group has gone too.
  w.exit("e", ExitStatus::signal(kTerm));
  CHECK(w.state("e") == State::stopping);
  CHECK(w.job("e").pid() == 0);
  CHECK(w.replies.empty());
  CHECK_FALSE(w.sup.quiescent());
  CHECK(stray_signals(w, "e").size() == 4);  // no SIGKILL yet: the stop's grace holds
  found(w, "e", {}, {{701, true}});
  CHECK(w.state("e") == State::stopping);
  found(w, "e", {}, {});
  CHECK(w.state("e") == State::stopped);
  REQUIRE(w.replies.size() == 1);
  CHECK(w.replies[0].outcomes[0].ok);
  CHECK(w.job("e").reason().empty());
  CHECK(w.sup.quiescent());
}

TEST_CASE("what left the group is killed when stop_timeout passes") {
  World w;
  escaped(w, 2s);
  w.sup.stop(w.pick({"e"}), w.now, w.fx);
  w.drain();
  w.exit("e", ExitStatus::signal(kTerm));
  w.advance(2s);
  CHECK(stray_signals(w, "e").back() == std::pair<int, Pids>{kKill, {700}});
  CHECK(w.state("e") == State::stopping);
  found(w, "e", {}, {});
  CHECK(w.state("e") == State::stopped);
}

TEST_CASE(
    "with kill_group, what a leader leaves outside its group dies with it, and the reason says "
    "so") {
  World w;
  // A double fork: the daemon is found when the leader exits, before the core hears of it.
  daemonize(w, daemon_spec(true), {800});
  CHECK(w.state("d") == State::exited);
  CHECK(stray_signals(w, "d") == Signals{{kKill, {800}}});
  CHECK(w.job("d").reason() ==
        "killed 1 process it left outside its process group (pid 800): a program that "
        "daemonizes itself needs its foreground option, or kill_group: false");
  // Found later (its parent exited after the leader): killed too, and said.
  found(w, "d", {}, {{800, true}, {801, true}, {802, false}});
  CHECK(stray_signals(w, "d").back() == std::pair<int, Pids>{kKill, {800, 801, 802}});
  CHECK(w.job("d").reason().find("killed 2 processes it left outside its process group (pids 800, "
                                 "801)") == 0);
  CHECK_FALSE(w.sup.quiescent());
  found(w, "d", {}, {});
  CHECK(w.sup.quiescent());
  // A start is not held (nothing is left), and reports the kill as a failure.
  auto jobs = w.pick({"d"});
  w.sup.start(jobs, w.now, w.fx);
  w.sup.wait_for(jobs, core::Goal::up, w.fx);
  w.drain();
  CHECK(w.spawns.size() == 2);
  w.advance(100ms);
  found(w, "d", {900});
  w.exit("d", ExitStatus::code(0));
  REQUIRE(w.replies.size() == 1);
  CHECK_FALSE(w.replies[0].outcomes[0].ok);
  CHECK(w.replies[0].outcomes[0].message.find("killed 1 process it left outside its process "
                                              "group (pid 900)") != std::string::npos);
}

TEST_CASE("with kill_group, what is killed after a stop is not noted") {
  World w;
  w.load({job_spec("d")});
  w.advance(2s);
  w.sup.stop(w.pick({"d"}), w.now, w.fx);
  w.drain();
  w.exit("d", ExitStatus::signal(kTerm));
  CHECK(w.state("d") == State::stopped);
  found(w, "d", {}, {{800, true}});
  CHECK(stray_signals(w, "d") == Signals{{kKill, {800}}});
  CHECK(w.job("d").reason().empty());
}

TEST_CASE("without kill_group, what a run leaves runs on, is reported, and refuses a start") {
  World w;
  daemonize(w, daemon_spec(false), {800});
  CHECK(w.state("d") == State::exited);
  CHECK(w.stray_kills.empty());
  CHECK(w.job("d").reason() ==
        "its main process has exited, but 1 process of it still runs (pid 800)");
  CHECK(w.job("d").held_by_leftovers());
  // A start would add another copy: refused, with what to do.
  auto o = start_outcome(w, "d");
  CHECK(w.spawns.size() == 1);
  CHECK_FALSE(o.ok);
  CHECK(o.message ==
        "1 process of its last run still runs (pid 800), and a start would add another copy "
        "(kill_group is false): stop or restart the job, which stops it first");
  CHECK(w.state("d") == State::exited);
  // Once it has gone, the note goes, and a start works.
  found(w, "d", {}, {});
  CHECK(w.job("d").reason().empty());
  w.sup.start(w.pick({"d"}), w.now, w.fx);
  w.drain();
  CHECK(w.spawns.size() == 2);
}

TEST_CASE(
    "without kill_group, a stop stops what the last run left, and a restart starts after it") {
  World w;
  auto s = daemon_spec(false);
  s.stop_timeout = 3s;
  daemonize(w, s, {800, 801});
  CHECK(w.job("d").reason() ==
        "its main process has exited, but 2 processes of it still run (pids 800, 801)");
  auto jobs = w.pick({"d"});
  w.sup.restart(jobs, w.now, w.fx);
  w.sup.wait_for(jobs, core::Goal::up, w.fx);
  w.drain();
  CHECK(w.state("d") == State::stopping);
  CHECK(stray_signals(w, "d") == Signals{{kTerm, {800, 801}}, {kCont, {800, 801}}});
  CHECK(w.spawns.size() == 1);
  // One will not go: SIGKILL after stop_timeout.
  found(w, "d", {}, {{801, true}});
  w.advance(3s);
  CHECK(stray_signals(w, "d").back() == std::pair<int, Pids>{kKill, {801}});
  found(w, "d", {}, {});
  CHECK(w.spawns.size() == 2);  // then the start
  w.advance(1s);
  REQUIRE(w.replies.size() == 1);
  CHECK(w.replies[0].outcomes[0].ok);
  CHECK(w.replies[0].outcomes[0].message == "running");

  // A plain stop of what a run left ends in stopped.
  w.advance(100ms);
  found(w, "d", {900});
  w.exit("d", ExitStatus::code(0));
  w.sup.stop(w.pick({"d"}), w.now, w.fx);
  w.drain();
  CHECK(w.state("d") == State::stopping);
  found(w, "d", {}, {});
  CHECK(w.state("d") == State::stopped);
  CHECK(w.spawns.size() == 2);
}

TEST_CASE("without kill_group, an automatic restart waits in backoff for what the last run left") {
  World w;
  auto s = daemon_spec(false);
  s.restart = config::RestartPolicy::always;
  s.start_seconds = 0ms;
  s.backoff = {100ms, 200ms, 2.0};
  w.load({s});
  found(w, "d", {800});
  w.exit("d", ExitStatus::code(0));
  CHECK(w.state("d") == State::backoff);
  w.advance(1s);
  CHECK(w.spawns.size() == 1);  // held: no copy beside it
  CHECK(w.state("d") == State::backoff);
  CHECK_FALSE(w.job("d").has_timer());  // and no wakeups while it waits
  CHECK(w.job("d").reason() ==
        "its main process has exited, but 1 process of it still runs (pid 800): restarted once "
        "it has exited");
  found(w, "d", {}, {});
  CHECK(w.spawns.size() == 2);
  CHECK(w.state("d") == State::running);
  CHECK(w.job("d").restarts() == 1);

  // A stable run that ends leaving something: no restart at once either.
  w.advance(1s);
  found(w, "d", {900});
  w.exit("d", ExitStatus::code(1));
  CHECK(w.state("d") == State::backoff);
  CHECK(w.spawns.size() == 2);
  found(w, "d", {}, {});
  CHECK(w.spawns.size() == 3);
}

TEST_CASE(
    "without kill_group, a stop of the running job spares what it leaves, and shutdown stops it") {
  World w;
  w.load({daemon_spec(false)});
  w.advance(2s);
  found(w, "d", {800});
  w.sup.stop(w.pick({"d"}), w.now, w.fx);
  w.drain();
  CHECK(w.stray_kills.empty());  // the leader only
  w.exit("d", ExitStatus::signal(kTerm));
  CHECK(w.state("d") == State::stopped);
  CHECK(w.stray_kills.empty());
  CHECK(w.job("d").reason() ==
        "its main process has exited, but 1 process of it still runs (pid 800)");
  w.sup.shutdown(w.now, w.fx);
  w.drain();
  CHECK(w.state("d") == State::stopping);
  CHECK(stray_signals(w, "d") == Signals{{kTerm, {800}}, {kCont, {800}}});
  CHECK_FALSE(w.sup.quiescent());
  found(w, "d", {}, {});
  CHECK(w.state("d") == State::stopped);
  CHECK(w.sup.quiescent());
}

TEST_CASE("shutdown stops what a run without kill_group leaves while it goes down") {
  World w;
  w.load({daemon_spec(false)});
  w.advance(2s);
  w.sup.shutdown(w.now, w.fx);
  w.drain();
  w.exit("d", ExitStatus::signal(kTerm));
  CHECK(w.state("d") == State::stopped);
  // Its child, left in its group, is found once it is vigild's.
  found(w, "d", {}, {{801, false}});
  CHECK(w.state("d") == State::stopping);
  CHECK(stray_signals(w, "d") == Signals{{kTerm, {801}}, {kCont, {801}}});
  found(w, "d", {}, {});
  CHECK(w.sup.quiescent());
}
