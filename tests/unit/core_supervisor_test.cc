// The job table: selection, waiters, reload and shutdown, against the fake world.
#include <doctest/doctest.h>

#include "core_harness.h"
#include "handlers.h"

using namespace vigil;
using namespace vigil::test;
using Names = std::vector<std::string>;

namespace {

Names names_of(const std::vector<core::Job*>& jobs) {
  Names n;
  for (auto* j : jobs) n.push_back(j->name());
  return n;
}

std::string select_error(World& w, Names names) {
  auto r = w.sup.select(names, true);
  REQUIRE(std::holds_alternative<core::SelectError>(r));
  return std::get<core::SelectError>(r).message;
}

}  // namespace

TEST_CASE("select: names, globs and all, in definition order without duplicates") {
  World w;
  w.load({job_spec("web"), job_spec("worker-1"), job_spec("worker-2"), job_spec("db")});
  CHECK(names_of(w.pick({})) == Names{"web", "worker-1", "worker-2", "db"});
  CHECK(names_of(w.pick({"all"})) == Names{"web", "worker-1", "worker-2", "db"});
  CHECK(names_of(w.pick({"db", "web"})) == Names{"db", "web"});
  CHECK(names_of(w.pick({"worker-*"})) == Names{"worker-1", "worker-2"});
  CHECK(names_of(w.pick({"worker-2", "worker-*"})) == Names{"worker-2", "worker-1"});
  CHECK(select_error(w, {"wbe"}) == "no job named 'wbe' (did you mean 'web'?)");
  CHECK(select_error(w, {"zzzzzz"}) == "no job named 'zzzzzz'");
  CHECK(select_error(w, {"cache-*"}) == "no job matches 'cache-*'");
  auto r = w.sup.select({"all"}, false);
  CHECK(std::holds_alternative<core::SelectError>(r));
}

TEST_CASE("select_one: a name or a glob of one job; a glob of several is an error naming them") {
  World w;
  std::vector<config::JobSpec> specs = {job_spec("web"), job_spec("db")};
  for (int i = 1; i <= 12; ++i) specs.push_back(job_spec("worker-" + std::to_string(i)));
  w.load(specs);
  auto one = [&](const std::string& name) {
    auto r = w.sup.select_one(name);
    REQUIRE(std::holds_alternative<core::Job*>(r));
    return std::get<core::Job*>(r)->name();
  };
  auto error = [&](const std::string& name) {
    auto r = w.sup.select_one(name);
    REQUIRE(std::holds_alternative<core::SelectError>(r));
    return std::get<core::SelectError>(r);
  };
  CHECK(one("web") == "web");
  CHECK(one("d*") == "db");
  CHECK(one("worker-1") == "worker-1");
  CHECK(error("x*").message == "no job matches 'x*'");
  CHECK_FALSE(error("x*").several);
  CHECK(error("wbe").message == "no job named 'wbe' (did you mean 'web'?)");
  CHECK(error("all").message.rfind("no job named 'all'", 0) == 0);  // not "every job"
  const core::SelectError several = error("worker-1*");
  CHECK(several.several);
  CHECK(several.message ==
        "'worker-1*' matches 4 jobs (worker-1, worker-10, worker-11, worker-12)");
  CHECK(error("worker-*").message ==
        "'worker-*' matches 12 jobs (worker-1, worker-2, worker-3, worker-4, worker-5, worker-6, "
        "worker-7, worker-8, worker-9, worker-10 and 2 more)");
}

TEST_CASE("start waiter answers when the job runs, after start_seconds") {
  World w;
  auto s = job_spec("web");
  s.autostart = false;
  w.load({s});
  auto jobs = w.pick({"web"});
  w.sup.start(jobs, w.now, w.fx);
  auto id = w.sup.wait_for(jobs, core::Goal::up, w.fx);
  w.drain();
  CHECK(w.replies.empty());
  w.advance(1s);
  REQUIRE(w.replies.size() == 1);
  CHECK(w.replies[0].waiter == id);
  REQUIRE(w.replies[0].outcomes.size() == 1);
  CHECK(w.replies[0].outcomes[0].ok);
  CHECK(w.replies[0].outcomes[0].message == "running");
  CHECK(w.replies[0].outcomes[0].pid == 100);
}

TEST_CASE("start waiter reports a failed start with its reason and log") {
  World w;
  auto s = job_spec("bad");
  s.autostart = false;
  w.load({s});
  auto jobs = w.pick({"bad"});
  w.sup.start(jobs, w.now, w.fx);
  w.sup.wait_for(jobs, core::Goal::up, w.fx);
  w.drain();
  w.advance(200ms);
  w.exit("bad", ExitStatus::code(1));
  REQUIRE(w.replies.size() == 1);
  const auto& o = w.replies[0].outcomes[0];
  CHECK_FALSE(o.ok);
  CHECK(o.state == State::backoff);
  CHECK(o.message == "exited with status 1 after 0.2s");
  CHECK(o.log == "/log/bad.err.log");
  auto err = core::outcomes_error(w.replies[0].outcomes);
  REQUIRE(err.has_value());
  CHECK(err->code == "failed");
  CHECK(err->message == "bad: exited with status 1 after 0.2s (see /log/bad.err.log)");
  CHECK(err->details["jobs"][0]["name"] == "bad");
}

TEST_CASE("a waiter for jobs already there answers at once") {
  World w;
  auto s = job_spec("a");
  s.start_seconds = 0ms;
  w.load({s});
  auto jobs = w.pick({"a"});
  w.sup.wait_for(jobs, core::Goal::up, w.fx);
  w.drain();
  REQUIRE(w.replies.size() == 1);
  CHECK(w.replies[0].outcomes[0].ok);
}

TEST_CASE("restart waiter waits through the stop and the new start") {
  World w;
  w.load({job_spec("a"), job_spec("b")});
  w.advance(2s);
  auto jobs = w.pick({"b", "a"});
  w.sup.restart(jobs, w.now, w.fx);
  w.sup.wait_for(jobs, core::Goal::up, w.fx);
  w.drain();
  w.exit("a", ExitStatus::signal(15));
  CHECK(w.replies.empty());  // "a" is starting again, "b" still stopping
  w.exit("b", ExitStatus::signal(15));
  w.advance(1s);
  REQUIRE(w.replies.size() == 1);
  const auto& out = w.replies[0].outcomes;
  REQUIRE(out.size() == 2);
  CHECK(out[0].job == "b");  // the order asked for
  CHECK(out[1].job == "a");
  CHECK(out[0].ok);
  CHECK(out[1].ok);
  CHECK(out[1].pid == 102);
}

TEST_CASE("stop waiter answers once the process is gone") {
  World w;
  w.load({job_spec("a")});
  auto jobs = w.pick({"a"});
  w.sup.stop(jobs, w.now, w.fx);
  w.sup.wait_for(jobs, core::Goal::down, w.fx);
  w.drain();
  CHECK(w.replies.empty());
  w.exit("a", ExitStatus::signal(15));
  REQUIRE(w.replies.size() == 1);
  CHECK(w.replies[0].outcomes[0].ok);
  CHECK(w.replies[0].outcomes[0].message == "stopped");
}

TEST_CASE("a cancelled waiter never replies") {
  World w;
  w.load({job_spec("a")});
  auto jobs = w.pick({"a"});
  auto id = w.sup.wait_for(jobs, core::Goal::up, w.fx);
  w.sup.cancel_wait(id);
  w.advance(1s);
  CHECK(w.replies.empty());
}

TEST_CASE("reload: added start, removed stop and leave, changed restart, unchanged untouched") {
  World w;
  auto keep = job_spec("keep");
  auto change = job_spec("change");
  auto gone = job_spec("gone");
  w.load({keep, change, gone});
  w.advance(2s);
  const pid_t keep_pid = w.job("keep").pid();

  auto changed = change;
  changed.argv = {"/bin/false"};
  auto added = job_spec("new");
  auto keep_moved = keep;
  keep_moved.defined_at = {"conf.d/other.yaml", 3, 3};  // moved, not changed
  auto report = w.sup.reload({keep_moved, changed, added}, w.now, w.fx);
  w.drain();
  CHECK(report.added == Names{"new"});
  CHECK(report.changed == Names{"change"});
  CHECK(report.removed == Names{"gone"});
  CHECK(report.unchanged == Names{"keep"});

  CHECK(w.job("keep").pid() == keep_pid);
  CHECK(w.state("keep") == State::running);
  CHECK(w.state("new") == State::starting);
  CHECK(w.state("change") == State::stopping);
  CHECK(w.state("gone") == State::stopping);
  // Removed jobs are not selectable while they stop.
  CHECK(select_error(w, {"gone"}).rfind("no job named 'gone'", 0) == 0);

  w.exit("change", ExitStatus::signal(15));
  CHECK(w.state("change") == State::starting);
  CHECK(w.job("change").spec().argv == Names{"/bin/false"});  // the new definition

  w.exit("gone", ExitStatus::signal(15));
  CHECK(w.sup.find("gone") == nullptr);
  CHECK(w.forgotten == Names{"gone"});
  Names order;
  for (const auto& j : w.sup.jobs()) order.push_back(j->name());
  CHECK(order == Names{"keep", "change", "new"});
}

TEST_CASE("reload of a changed stopped job takes the definition without starting it") {
  World w;
  auto s = job_spec("a");
  s.autostart = false;
  w.load({s});
  auto s2 = s;
  s2.cwd = "/tmp";
  auto report = w.sup.reload({s2}, w.now, w.fx);
  w.drain();
  CHECK(report.changed == Names{"a"});
  CHECK(w.state("a") == State::stopped);
  CHECK(w.job("a").spec().cwd == "/tmp");
  CHECK(w.spawns.empty());
}

TEST_CASE("shutdown stops every job at once and refuses starts") {
  World w;
  w.load({job_spec("a"), job_spec("b"), job_spec("c")});
  w.advance(2s);
  w.sup.shutdown(w.now, w.fx);
  w.drain();
  CHECK(w.kills.size() == 6);  // all signalled (TERM, CONT) at the same moment
  CHECK_FALSE(w.sup.quiescent());
  w.sup.start(w.pick({"a"}), w.now, w.fx);
  w.drain();
  CHECK(w.state("a") == State::stopping);
  for (auto n : {"a", "b", "c"}) w.exit(n, ExitStatus::signal(15));
  CHECK(w.sup.quiescent());
  CHECK(w.spawns.size() == 3);  // nothing came back
}

TEST_CASE("a start cut short by a stop says so, with no log to read") {
  World w;
  auto s = job_spec("x");
  s.autostart = false;
  s.start_seconds = 5000ms;
  w.load({s});
  auto jobs = w.pick({"x"});
  w.sup.start(jobs, w.now, w.fx);
  w.sup.wait_for(jobs, core::Goal::up, w.fx);
  w.drain();
  w.advance(1s);
  // Someone else stops it while the start waits for start_seconds.
  w.sup.stop(jobs, w.now, w.fx);
  w.drain();
  CHECK(w.replies.empty());  // not before its process is gone
  w.exit("x", ExitStatus::signal(15));
  REQUIRE(w.replies.size() == 1);
  const auto& o = w.replies[0].outcomes[0];
  CHECK_FALSE(o.ok);
  CHECK(o.state == State::stopped);
  CHECK(o.message == "start cancelled: it was stopped by a stop request");
  CHECK(o.log.empty());  // the job's log has nothing to say about it
  auto err = core::outcomes_error(w.replies[0].outcomes);
  REQUIRE(err.has_value());
  CHECK(err->message == "x: start cancelled: it was stopped by a stop request");

  // In backoff, a stop ends the wait at once; at shutdown, the shutdown is the reason.
  w.fail_spawn["x"] = "cannot fork: Resource temporarily unavailable";
  w.sup.start(jobs, w.now, w.fx);
  w.drain();
  REQUIRE(w.state("x") == State::backoff);
  w.fail_spawn.clear();
  w.sup.restart(jobs, w.now, w.fx);  // from backoff: spawned again, starting
  w.sup.wait_for(jobs, core::Goal::up, w.fx);
  w.drain();
  REQUIRE(w.state("x") == State::starting);
  w.sup.shutdown(w.now, w.fx);
  w.drain();
  w.exit("x", ExitStatus::signal(15));
  REQUIRE(w.replies.size() == 2);
  CHECK(w.replies[1].outcomes[0].message == "start cancelled: vigild is shutting down");
  CHECK(w.replies[1].outcomes[0].log.empty());
}

TEST_CASE("since: a job that never changed state shows when it was loaded") {
  World w;
  auto idle = job_spec("idle");
  idle.autostart = false;
  w.load({idle, job_spec("up")});
  const double loaded = w.now.unix_seconds;
  w.advance(3s);
  CHECK(w.job("idle").state() == State::stopped);
  CHECK(w.job("idle").since() == doctest::Approx(loaded));
  CHECK(core::status_json(w.job("idle"), w.now)["since"] == doctest::Approx(loaded));
  CHECK(w.job("up").since() == doctest::Approx(loaded + 1.0));  // running after 1s
  // A job a reload adds: the time of that reload.
  auto later = job_spec("later");
  later.autostart = false;
  w.sup.reload({idle, job_spec("up"), later}, w.now, w.fx);
  w.drain();
  CHECK(w.job("later").since() == doctest::Approx(loaded + 3.0));
  CHECK(w.job("idle").since() == doctest::Approx(loaded));  // untouched by the reload
}
