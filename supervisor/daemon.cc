// vigild's loop: events in, Effects out.
#include "daemon.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "fd_budget.h"
#include "fsutil.h"
#include "handlers.h"
#include "job_output.h"
#include "resident.h"
#include "values.h"
#include "vigil_version.h"

extern char** environ;

namespace vigil {

using protocol::Error;
using protocol::json;
using ClientId = ControlServer::ClientId;
namespace code = protocol::code;

namespace {

template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;

// The environment jobs start from: the daemon's own, less what is vigild's business.
std::vector<std::string> job_base_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv = *e;
    if (!Spawner::is_internal_variable(kv.substr(0, kv.find('=')))) env.push_back(kv);
  }
  return env;
}

// Reads args.names: a list of strings (absent: empty). Returns an error when ill-typed.
std::optional<Error> read_names(const json& args, std::vector<std::string>& names,
                                bool required) {
  auto it = args.find("names");
  if (it == args.end() || it->is_null()) {
    if (required) return Error{code::bad_request, "args.names: expected a list of job names", nullptr};
    return std::nullopt;
  }
  if (!it->is_array()) return Error{code::bad_request, "args.names: expected a list of strings", nullptr};
  for (const auto& n : *it) {
    if (!n.is_string()) return Error{code::bad_request, "args.names: expected a list of strings", nullptr};
    names.push_back(n.get<std::string>());
  }
  if (required && names.empty()) {
    return Error{code::bad_request, "args.names: name at least one job, or \"all\"", nullptr};
  }
  return std::nullopt;
}

// args.fields of a status request (an array of strings: the protocol checked that): the
// members each status object should carry; all of them when there is none.
std::optional<Error> read_status_members(const json& args, core::StatusMembers& members) {
  members = core::kAllStatusMembers;
  auto it = args.find("fields");
  if (it == args.end()) return std::nullopt;
  members = 0;
  for (const auto& f : *it) {
    const auto& name = f.get_ref<const std::string&>();
    auto member = core::status_member(name);
    if (!member) {
      return Error{code::bad_request,
                   "args.fields: no status member " + config::quote(name) + " (expected " +
                       core::status_member_names() + ")",
                   nullptr};
    }
    members |= *member;
  }
  return std::nullopt;
}

std::optional<Error> read_bool(const json& args, const char* key, bool& out) {
  auto it = args.find(key);
  if (it == args.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) {
    return Error{code::bad_request, std::string("args.") + key + ": expected true or false", nullptr};
  }
  out = it->get<bool>();
  return std::nullopt;
}

// The most of a log one `logs` answer carries. Even with JSON escaping at its worst (six
// bytes for one) the reply stays within what a client may have queued (kMaxQueuedOutput).
constexpr std::size_t kMaxLogsBytes = 1024 * 1024;

std::string describe_change(const core::StateChanged& c) {
  std::string line = c.job + ": " + std::string(core::to_string(c.from)) + " -> " +
                     std::string(core::to_string(c.to));
  if (c.pid > 0) line += " (pid " + std::to_string(c.pid) + ")";
  // The reason already tells how the process ended, with more detail than the exit alone.
  const bool says_why = c.to == core::State::backoff || c.to == core::State::fatal ||
                        c.to == core::State::exited || c.to == core::State::stopped;
  if (says_why && !c.reason.empty()) {
    line += ": " + c.reason;
  } else if (c.exit) {
    line += ": " + core::describe(*c.exit);
  }
  return line;
}

}  // namespace

const std::map<std::string, Daemon::Handler, std::less<>>& Daemon::registry() {
  // One entry per command of protocol::commands(); prepare() checks they match.
  static const std::map<std::string, Handler, std::less<>> table = {
      {"version", &Daemon::cmd_version},   {"status", &Daemon::cmd_status},
      {"start", &Daemon::cmd_start},       {"stop", &Daemon::cmd_stop},
      {"restart", &Daemon::cmd_restart},   {"signal", &Daemon::cmd_signal},
      {"logs", &Daemon::cmd_logs},         {"events", &Daemon::cmd_events},
      {"reload", &Daemon::cmd_reload},     {"reopen_logs", &Daemon::cmd_reopen_logs},
      {"shutdown", &Daemon::cmd_shutdown},
  };
  return table;
}

Daemon::Daemon(config::Config cfg, config::Environment env, Logger& log)
    : cfg_(std::move(cfg)), env_(std::move(env)), log_(log) {
  uv_loop_init(&loop_);
  // Room for clients and the jobs' pipes and log files (fd_budget.h): the soft file
  // limit goes up to the hard one. Jobs get the original back.
  struct rlimit nofile {};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  struct rlimit raised = nofile;
  raised.rlim_cur = nofile.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) raised = nofile;
  fd_limit_ = raised.rlim_cur;
  fs::set_long_lived_fd_base(fd_limit_);
  // The pipes and open log files are held from the long-lived range; the table grows now,
  // before the log writer's thread shares it (fsutil.h).
  fs::reserve_long_lived(fd_budget(cfg_.jobs).long_lived(fd_limit_) + 64);
  spawner_ = std::make_unique<Spawner>(job_base_environment(), cfg_.supervisor.umask, nofile,
                                       strays_.daemon_id());
  watchdog_.set_daemon_id(strays_.daemon_id());
  writer_ = std::make_unique<LogWriter>(&loop_);
  log_.attach(*writer_);
  server_ = std::make_unique<ControlServer>(&loop_, *this, log_);
}

Daemon::~Daemon() {
  server_.reset();
  outputs_.clear();
  log_.detach();
  writer_.reset();
  job_timer_.reset();
  signals_.clear();
  shutdown_timer_.reset();
  guard_timer_.reset();
  trim_timer_.reset();
  sweep_timer_.reset();
  // Let libuv finish closing what was closed above, then check nothing is left open.
  uv_run(&loop_, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop_);
  if (rc != 0) log_.error("internal: libuv handles left open at exit");
}

core::Instant Daemon::now() {
  uv_update_time(&loop_);
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return {std::chrono::milliseconds(uv_now(&loop_)),
          static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9};
}

std::string Daemon::prepare() {
  for (const auto& c : protocol::commands()) {
    if (!registry().count(c.name)) return "internal: no handler for command " + std::string(c.name);
  }
  // Orphaned grandchildren of jobs are reparented to vigild, which reaps them.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0 && ::getpid() != 1) {
    log_.warn("cannot become a child subreaper: " + fs::errno_text(errno));
  }
  if (auto err = pidfile_.acquire(cfg_.supervisor.pidfile, ::getpid()); !err.empty()) return err;
  if (auto err = server_->listen(cfg_.supervisor); !err.empty()) {
    pidfile_.release();
    return err;
  }
  // A client that goes away mid-reply must not kill the daemon.
  ::signal(SIGPIPE, SIG_IGN);
  auto watch = [&](int sig, std::function<void()> fn) {
    signals_.push_back(std::make_unique<SignalWatcher>(&loop_, sig, std::move(fn)));
  };
  watch(SIGCHLD, [this] { on_sigchld(); });
  watch(SIGTERM, [this] { begin_shutdown("SIGTERM"); });
  watch(SIGINT, [this] { begin_shutdown("SIGINT"); });
  watch(SIGHUP, [this] {
    auto r = reload();
    release_memory_soon();
    if (auto* errors = std::get_if<std::vector<std::string>>(&r)) {
      for (const auto& e : *errors) log_.error("reload: " + e);
      log_.error("reload: config not loaded; nothing changed");
    }
  });
  watch(SIGUSR1, [this] { reopen_logs(); });
  // After the SIGCHLD watcher: a guard that exits at once is noticed and retried.
  start_guard();
  return {};
}

int Daemon::run() {
  log_.info("vigild " VIGIL_VERSION " started (pid " + std::to_string(::getpid()) + ", " +
            std::to_string(cfg_.jobs.size()) + " jobs, socket " + cfg_.supervisor.socket + ")");
  budget_descriptors(cfg_.jobs, "");
  sup_.load(cfg_.jobs, now(), fx_);
  // Each job holds its own definition from now on; a second copy of 1000 of them is
  // memory for nothing.
  std::vector<config::JobSpec>().swap(cfg_.jobs);  // `= {}` would keep the capacity
  run_effects();
  release_startup_memory();
  uv_run(&loop_, UV_RUN_DEFAULT);
  return exit_code_;
}

// --- Effects ---

// Spawns are started as they come and collected once nothing else is left to do, so the
// children of a batch (a start of 1000 jobs) exec side by side.
void Daemon::run_effects() {
  for (;;) {
    while (!fx_.empty()) {
      core::Effect effect = std::move(fx_.front());
      fx_.pop_front();
      run_effect(effect);
    }
    if (spawner_->idle()) break;
    for (auto& [job, r] : spawner_->collect()) spawn_done(job, r);
  }
  arm_job_timer();  // once for the whole batch of timer effects
  maybe_finish();
}

void Daemon::spawn_done(const std::string& name, const SpawnResult& r) {
  if (r.pid > 0) {
    watchdog_.watch(r.pid);  // the job leads its own process group
    sup_.spawned(name, r.pid, now(), fx_);
  } else {
    log_.error(name + ": " + r.error);
    sup_.spawn_failed(name, r.error, now(), fx_);
  }
}

void Daemon::run_effect(const core::Effect& effect) {
  std::visit(
      overloaded{
          [&](const core::Spawn& s) {
            core::Job* job = sup_.find(s.job);
            if (job == nullptr) return;
            ChildStdio io;  // the spawned child takes it over; closed here otherwise
            if (auto err = output_for(*job).prepare(io); !err.empty()) {
              spawn_done(s.job, {0, err});
            } else {
              spawner_->start(s.job, job->spec(), io, s.run);
            }
          },
          [&](const core::Kill& k) {
            const pid_t target = k.group ? -k.pid : k.pid;
            if (::kill(target, k.signo) != 0 && errno != ESRCH) {
              log_.warn(k.job + ": cannot send " + config::signal_name(k.signo) + " to " +
                        std::to_string(target) + ": " + fs::errno_text(errno));
            }
          },
          [&](const core::KillStrays& k) {
            // Only what the last sweep found, and only while it is the same process.
            for (pid_t pid : k.pids) {
              auto it = stray_start_.find(pid);
              if (it != stray_start_.end()) StrayFinder::signal(pid, it->second, k.signo);
            }
          },
          [&](const core::SetTimer& t) { deadlines_.set(t.job, t.deadline); },
          [&](const core::ClearTimer& t) { deadlines_.clear(t.job); },
          [&](const core::StateChanged& c) {
            auto level = c.to == core::State::fatal ? Logger::Level::error : Logger::Level::info;
            log_.log(level, describe_change(c));
            if (event_subscribers_.empty()) return;
            const json fields = core::state_event_json(c);
            for (const auto& [client, id] : event_subscribers_) {
              server_->send(client, protocol::encode_event(id, "state", fields));
            }
          },
          [&](const core::Forget& f) {
            deadlines_.clear(f.job);
            with_strays_.erase(f.job);
            if (auto it = outputs_.find(f.job); it != outputs_.end()) {
              it->second->drain();  // what the job wrote last reaches its followers first
              outputs_.erase(it);
            }
            end_follows(f.job, "job " + f.job + " was removed by a reload");
          },
          [&](const core::Reply& r) {
            auto it = waiting_.find(r.waiter);
            if (it == waiting_.end()) return;
            PendingReply who = it->second;
            waiting_.erase(it);
            if (auto err = core::outcomes_error(r.outcomes)) {
              server_->send_error(who.client, who.id, *err);
            } else {
              json result = json::array();
              for (const auto& o : r.outcomes) result.push_back(core::outcome_json(o));
              server_->send_result(who.client, who.id, result);
            }
            close_if_done(who.client);
          },
      },
      effect);
}

JobOutput& Daemon::output_for(const core::Job& job) {
  auto [it, added] = outputs_.try_emplace(job.name());
  auto& slot = it->second;
  if (added) {
    // The map's key lives as long as the JobOutput: the callbacks point at it rather than
    // carry a copy of the name each (which std::function would put on the heap).
    const std::string* name = &it->first;
    slot = std::make_unique<JobOutput>(
        &loop_, *writer_, job.shared_spec(),
        [this, name](JobOutput::Stream s, std::string_view text) { on_output(*name, s, text); },
        [this, name](const std::string& error) {
          if (error.empty()) {
            log_.info(*name + ": writing its log works again");
          } else {
            log_.error(*name + ": " + error + "; the job keeps running, its output is dropped");
          }
        });
  } else {
    slot->redefine(job.shared_spec());
  }
  return *slot;
}

void Daemon::on_output(const std::string& job, JobOutput::Stream stream, std::string_view text) {
  auto it = followers_.find(job);
  if (it == followers_.end()) return;
  // Who gets this, taken first: a follower dropped by send() leaves the list
  // (on_disconnect) meanwhile. Not a copy of the followers themselves, backlogs and all.
  struct Target {
    ControlServer::ClientId client;
    json id;
    bool answered;
  };
  std::vector<Target> targets;
  for (const auto& f : it->second) {
    if (f.stream == stream && !f.ended) targets.push_back({f.client, f.id, f.answered});
  }
  if (targets.empty()) return;
  const json fields = {{"name", job},
                       {"stream", stream == JobOutput::Stream::out ? "stdout" : "stderr"},
                       {"text", std::string(text)}};
  for (const auto& t : targets) {
    std::string event = protocol::encode_event(t.id, "log", fields);
    if (t.answered) {
      // A follower that does not keep up is dropped by the server once its queue is full.
      server_->send(t.client, event);
      continue;
    }
    // Waiting for its tail: kept, within the bound a client's queue has anyway, and
    // counted with what all clients hold (which may drop this one, or others).
    for (auto& waiting : it->second) {
      if (waiting.client != t.client || waiting.id != t.id || waiting.ended) continue;
      const std::size_t size = event.size();
      waiting.backlog_bytes += size;
      waiting.backlog.push_back(std::move(event));
      if (waiting.backlog_bytes > kMaxQueuedOutput) {
        server_->disconnect(t.client);
      } else {
        server_->charge(t.client, size);
      }
      break;  // `waiting` may be gone now
    }
  }
}

void Daemon::on_sigchld() {
  // Reap everything that has exited: one SIGCHLD may stand for many children.
  bool swept = false;
  bool sweep = false;
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    core::ExitStatus e = WIFSIGNALED(status) ? core::ExitStatus::signal(WTERMSIG(status))
                                             : core::ExitStatus::code(WEXITSTATUS(status));
    if (pid == watchdog_.pid()) {
      on_guard_exit(e);
      continue;
    }
    // A leader that exits on its own while starting (a program that daemonizes itself),
    // or without kill_group: what its run left must be known before the core decides
    // what comes next (a start beside a leftover copy; a start reported as done). Its
    // children are vigild's by now. One sweep for the batch; other exits (a crash of a
    // running job, which is respawned at once; many leaders on their way down in a
    // stop) wait for sweep_soon.
    const core::Job* job = sup_.leader_of(pid);
    if (job != nullptr && !swept &&
        (job->state() == core::State::starting ||
         (job->state() != core::State::stopping && !job->spec().kill_group))) {
      sweep_strays();
      swept = true;
    }
    if (sup_.child_exited(pid, e, now(), fx_)) {
      watchdog_.unwatch(pid);
    } else {
      log_.info("reaped orphan pid " + std::to_string(pid) + " (" + core::describe(e) + ")");
    }
    // Whatever exited, its children are vigild's now: something may be left to find.
    sweep = true;
  }
  if (sweep) sweep_soon();
  run_effects();
}

void Daemon::sweep_strays() {
  sweep_due_ = false;
  if (sweep_timer_) sweep_timer_->stop();
  const core::Instant t = now();
  last_sweep_ = t.mono;
  const auto found = strays_.find(
      [this](pid_t p) { return p == watchdog_.pid() || sup_.leader_of(p) != nullptr; });
  std::map<pid_t, unsigned long long> seen;
  struct Lists {
    std::vector<pid_t> current;
    std::vector<core::Stray> leftovers;
  };
  std::map<std::string, Lists> by_job;
  for (const auto& f : found) {
    seen[f.pid] = f.start;
    const bool news = !stray_start_.count(f.pid);
    const core::Job* job = sup_.find(f.mark.job);
    if (job == nullptr) {
      // Of a job that a reload removed: nothing of it may live on.
      if (news)
        log_.warn("killing pid " + std::to_string(f.pid) + ", left by removed job " + f.mark.job);
      StrayFinder::signal(f.pid, f.start, SIGKILL);
      continue;
    }
    const std::string who = f.mark.job + ": pid " + std::to_string(f.pid);
    if (job->pid() > 0 && f.mark.run == job->run()) {
      if (job->spec().kill_group && f.pgid == job->pid()) continue;  // its group's signals reach it
      if (news) log_.info(who + " left the job's process group; a stop reaches it too");
      by_job[f.mark.job].current.push_back(f.pid);
      continue;
    }
    // Its run's leader, when that is the last one (an earlier run's is not kept).
    const pid_t leader = f.mark.run != job->run() ? 0
                         : job->pid() > 0         ? job->pid()
                                                  : job->last_pid();
    const bool left_group = f.pgid != leader;
    if (news) {
      std::string line = who + " outlived its run's main process";
      if (left_group) line += ", outside the job's process group";
      if (!job->spec().kill_group) {
        line += ": it runs on (kill_group: false)";
      } else if (job->state() == core::State::stopping) {
        line += ": it stops with the job";
      } else {
        line += ": killing it (kill_group)";
      }
      log_.info(line);
    }
    by_job[f.mark.job].leftovers.push_back({f.pid, left_group});
  }
  stray_start_ = std::move(seen);
  // Jobs that had some and have none left hear so too.
  for (const auto& name : with_strays_) by_job.try_emplace(name);
  with_strays_.clear();
  for (auto& [name, lists] : by_job) {
    if (!lists.current.empty() || !lists.leftovers.empty()) with_strays_.insert(name);
    sup_.strays_found(name, std::move(lists.current), std::move(lists.leftovers), t, fx_);
  }
}

void Daemon::sweep_soon() {
  if (sweep_due_) return;
  sweep_due_ = true;
  // A burst of exits (a stop of 1000 jobs) is swept a few times, not once per exit: each
  // sweep reads vigild's list of children, which is long then.
  constexpr std::chrono::milliseconds kGap{20};
  if (!sweep_timer_) {
    sweep_timer_ = std::make_unique<Timer>(&loop_, [this] {
      sweep_strays();
      run_effects();
    });
  }
  const auto since = now().mono - last_sweep_;
  sweep_timer_->start(since >= kGap ? 0 : static_cast<std::uint64_t>((kGap - since).count()));
}

void Daemon::flush_sweep() {
  if (sweep_due_) sweep_strays();
}

// One libuv timer, armed for the earliest job deadline (none: stopped, so no wakeup).
void Daemon::arm_job_timer() {
  const auto next = deadlines_.next();
  if (!next) {
    if (job_timer_) job_timer_->stop();
    return;
  }
  if (!job_timer_) job_timer_ = std::make_unique<Timer>(&loop_, [this] { on_job_timers(); });
  const auto left = *next - now().mono;
  job_timer_->start(left.count() > 0 ? static_cast<std::uint64_t>(left.count()) : 0);
}

void Daemon::on_job_timers() {
  // libuv measures from its cached loop time; never act before a deadline (a job not
  // due yet re-arms the timer below).
  const core::Instant t = now();
  for (const auto& job : deadlines_.take_due(t.mono)) sup_.timer_fired(job, t, fx_);
  // A stop_timeout that passed over what a job left: look again soon, even if none of it
  // is vigild's child to be reaped (what died below a live process).
  if (!with_strays_.empty()) sweep_soon();
  run_effects();  // re-arms the timer for the next deadline
}

// --- The orphan guard ---

void Daemon::start_guard() {
  guard_pacer_.started(now().mono);
  if (auto err = watchdog_.restart(); !err.empty()) {
    retry_guard_later("cannot start the orphan guard (" + err + ")",
                      guard_pacer_.failed_to_start());
  }
}

void Daemon::on_guard_exit(const core::ExitStatus& e) {
  watchdog_.exited();
  retry_guard_later("the orphan guard exited (" + core::describe(e) + ")",
                    guard_pacer_.exited(now().mono));
}

void Daemon::retry_guard_later(const std::string& what, std::chrono::milliseconds delay) {
  std::string note = what + "; restarting it in " + config::format_duration(delay);
  if (guard_pacer_.at_cap(delay)) {
    note += " (it keeps failing: until it runs, jobs outlive a vigild that is killed)";
  }
  log_.warn(note);
  // One timer, armed only while a restart is pending: a daemon whose guard runs never
  // wakes for it.
  if (!guard_timer_) guard_timer_ = std::make_unique<Timer>(&loop_, [this] { start_guard(); });
  guard_timer_->start(static_cast<std::uint64_t>(delay.count()));
}

// --- Shutdown ---

void Daemon::begin_shutdown(const std::string& why) {
  if (shutting_down_) return;
  shutting_down_ = true;
  log_.info("shutting down (" + why + "): stopping all jobs");
  // Every job stops at once with its own stop_timeout; shutdown_timeout bounds the whole.
  shutdown_timer_ = std::make_unique<Timer>(&loop_, [this] {
    log_.warn("shutdown_timeout passed: killing what is left");
    for (const auto& job : sup_.jobs()) {
      if (job->pid() > 0) ::kill(job->spec().kill_group ? -job->pid() : job->pid(), SIGKILL);
    }
    sweep_strays();
    for (const auto& [pid, start] : stray_start_) StrayFinder::signal(pid, start, SIGKILL);
    // SIGKILL cannot be refused; give the kernel a moment to deliver it, then go anyway.
    shutdown_timer_->stop();
    auto last = std::make_unique<Timer>(&loop_, [this] { finish(); });
    last->start(2000);
    shutdown_timer_ = std::move(last);
  });
  shutdown_timer_->start(static_cast<std::uint64_t>(cfg_.supervisor.shutdown_timeout.count()));
  sweep_strays();  // so that the stop reaches what left the jobs' groups
  sup_.shutdown(now(), fx_);
  run_effects();
}

void Daemon::maybe_finish() {
  if (!shutting_down_ || finished_ || !sup_.quiescent()) return;
  if (!final_sweep_done_) {
    // Every leader is gone: what they left is vigild's children now. One more look; what
    // it finds is stopped, and each exit among it brings the next look (on_sigchld).
    final_sweep_done_ = true;
    sweep_strays();
    if (!fx_.empty()) {
      run_effects();  // comes back here
      return;
    }
    if (!sup_.quiescent()) return;
  }
  finish();
}

void Daemon::finish() {
  if (finished_) return;
  finished_ = true;
  log_.info("all jobs stopped; exiting");
  // What the jobs wrote last is still in their pipes: it goes to disk (and to followers)
  // before we go, and tails still being read are answered.
  for (auto& [name, out] : outputs_) out->drain();
  writer_->flush();
  outputs_.clear();
  // The pidfile is free before clients see their connections close, so that
  // `vigilctl shutdown && vigild` never finds the old daemon in the way.
  watchdog_.goodbye();
  pidfile_.release();
  // A follower learns why its stream ends rather than only that the connection did.
  std::vector<std::string> followed;
  for (const auto& [job, list] : followers_) followed.push_back(job);
  for (const auto& job : followed) end_follows(job, "vigild is shutting down");
  // And so does a subscriber to state changes.
  for (const auto& [client, id] : event_subscribers_) {
    server_->send(client, protocol::encode_event(id, "end", {{"reason", "vigild is shutting down"}}));
  }
  server_->close();
  job_timer_.reset();
  signals_.clear();
  shutdown_timer_.reset();
  guard_timer_.reset();
  trim_timer_.reset();
  sweep_timer_.reset();
  // With every handle closed, uv_run returns.
}

// --- Reload and log files ---

std::variant<core::ReloadReport, std::vector<std::string>> Daemon::reload() {
  auto loaded = config::load(cfg_.path, env_);
  if (!loaded.ok()) {
    std::vector<std::string> errors;
    for (const auto& d : loaded.errors) errors.push_back(d.str());
    return errors;
  }
  const auto& next = loaded.config->supervisor;
  const auto& cur = cfg_.supervisor;
  if (next.socket != cur.socket || next.pidfile != cur.pidfile || next.log != cur.log ||
      next.socket_mode != cur.socket_mode || next.socket_group != cur.socket_group ||
      next.umask != cur.umask) {
    log_.warn("reload: changes to supervisor.socket, socket_mode, socket_group, pidfile, log "
              "and umask take effect when vigild restarts");
  }
  cfg_.supervisor.shutdown_timeout = next.shutdown_timeout;
  cfg_.files = loaded.config->files;
  sweep_strays();  // jobs it stops or restarts: their stop reaches what left their groups
  budget_descriptors(loaded.config->jobs, "reload: ");
  auto report = sup_.reload(loaded.config->jobs, now(), fx_);
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& n : v) s += (s.empty() ? "" : ", ") + n;
    return s.empty() ? std::string("none") : s;
  };
  log_.info("reload: added " + join(report.added) + "; changed " + join(report.changed) +
            "; removed " + join(report.removed) + "; " + std::to_string(report.unchanged.size()) +
            " unchanged");
  run_effects();
  return report;
}

void Daemon::budget_descriptors(const std::vector<config::JobSpec>& jobs, const char* when) {
  const FdBudget budget = fd_budget(jobs);
  writer_->set_max_open(budget.open_logs(fd_limit_));
  if (auto shortfall = budget.shortfall(fd_limit_); !shortfall.empty()) {
    log_.warn(when + shortfall);
  }
}

void Daemon::reopen_logs(std::function<void()> done) {
  if (auto err = log_.reopen(); !err.empty()) log_.error("supervisor.log: " + err);
  // The job logs, and the daemon's own: done once nothing more goes to the moved files.
  writer_->reopen_all([this, done = std::move(done)] {
    log_.info("log files reopened");
    if (done) done();
  });
}

// --- Requests ---

void Daemon::on_request(ClientId client, const Peer& peer, protocol::Request req) {
  auto it = registry().find(req.cmd);
  if (it == registry().end()) {
    // parse_request() admits only commands of the table, and prepare() checked that each
    // has a handler: this is a bug, reported rather than crashed on.
    server_->send_error(client, req.id,
                        {code::internal, "no handler for command '" + req.cmd + "'", nullptr});
    return;
  }
  const auto* info = protocol::find_command(req.cmd);
  if (info != nullptr && info->mutating) {
    // An audit trail of who changed what.
    log_.info("request " + req.cmd + " " + req.args.dump() + " from uid " +
              std::to_string(peer.uid) + " (pid " + std::to_string(peer.pid) + ")");
  }
  (this->*(it->second))(client, req);
}

void Daemon::close_if_done(ClientId client) {
  // A client that said all it had to say goes once it has every answer.
  if (server_->input_closed(client) && !on_input_closed(client)) server_->close_when_done(client);
}

void Daemon::on_disconnect(ClientId client) {
  event_subscribers_.erase(client);
  answers_owed_.erase(client);
  for (auto& [job, list] : followers_) {
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](const Follower& f) { return f.client == client; }),
               list.end());
  }
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->second.client == client) {
      sup_.cancel_wait(it->first);
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
}

bool Daemon::on_input_closed(ClientId client) {
  if (event_subscribers_.count(client) || answers_owed_.count(client)) return true;
  for (const auto& [job, list] : followers_) {
    for (const auto& f : list) {
      if (f.client == client) return true;
    }
  }
  for (const auto& [waiter, who] : waiting_) {
    if (who.client == client) return true;
  }
  return false;
}

void Daemon::cmd_version(ClientId c, const protocol::Request& r) {
  server_->send_result(c, r.id, {{"version", VIGIL_VERSION}, {"protocol", protocol::kProtocolVersion}});
}

void Daemon::cmd_status(ClientId c, const protocol::Request& r) {
  std::vector<std::string> names;
  core::StatusMembers members = core::kAllStatusMembers;
  if (auto err = read_names(r.args, names, false)) return server_->send_error(c, r.id, *err);
  if (auto err = read_status_members(r.args, members)) return server_->send_error(c, r.id, *err);
  flush_sweep();
  if (!fx_.empty()) run_effects();
  auto picked = sup_.select(names, true);
  if (auto* e = std::get_if<core::SelectError>(&picked)) {
    return server_->send_error(c, r.id, {code::not_found, e->message, nullptr});
  }
  const auto t = now();
  const auto& jobs = std::get<std::vector<core::Job*>>(picked);
  // Written as text straight away: a json tree of 1000 status objects cost more than
  // everything else a status request does.
  std::string result = "[";
  result.reserve(jobs.size() * 512);
  for (core::Job* job : jobs) {
    if (result.size() > 1) result += ',';
    auto out = outputs_.find(job->name());
    core::append_status_json(
        result, *job, t, out == outputs_.end() ? std::string{} : out->second->log_error(), members);
  }
  result += ']';
  server_->send(c, protocol::encode_result_text(r.id, result));
}

void Daemon::change_jobs(ClientId c, const protocol::Request& r, core::Goal goal,
                         void (core::Supervisor::*op)(const std::vector<core::Job*>&,
                                                      const core::Instant&, core::Effects&)) {
  std::vector<std::string> names;
  bool no_wait = false;
  if (auto err = read_names(r.args, names, true)) return server_->send_error(c, r.id, *err);
  if (auto err = read_bool(r.args, "no_wait", no_wait)) return server_->send_error(c, r.id, *err);
  if (shutting_down_ && goal == core::Goal::up) {
    return server_->send_error(c, r.id, {code::shutting_down, "vigild is shutting down", nullptr});
  }
  // A stop must reach what left the jobs' groups; a start must know what is left. (First:
  // what the sweep tells the core may take a removed job out of the table.)
  if (goal == core::Goal::down || op == &core::Supervisor::restart) {
    sweep_strays();
  } else {
    flush_sweep();
  }
  auto picked = sup_.select(names, true);
  if (auto* e = std::get_if<core::SelectError>(&picked)) {
    run_effects();
    return server_->send_error(c, r.id, {code::not_found, e->message, nullptr});
  }
  const auto& jobs = std::get<std::vector<core::Job*>>(picked);
  (sup_.*op)(jobs, now(), fx_);
  if (no_wait) {
    run_effects();  // so the answer shows the processes just spawned or signalled
    json result = json::array();
    for (core::Job* job : jobs) {
      core::Outcome o{job->name(), true, job->state(), job->pid(),
                      std::string(core::to_string(job->state())), {}};
      result.push_back(core::outcome_json(o));
    }
    server_->send_result(c, r.id, result);
  } else {
    waiting_[sup_.wait_for(jobs, goal, fx_)] = {c, r.id};
  }
  run_effects();
}

void Daemon::cmd_start(ClientId c, const protocol::Request& r) {
  change_jobs(c, r, core::Goal::up, &core::Supervisor::start);
}
void Daemon::cmd_stop(ClientId c, const protocol::Request& r) {
  change_jobs(c, r, core::Goal::down, &core::Supervisor::stop);
}
void Daemon::cmd_restart(ClientId c, const protocol::Request& r) {
  change_jobs(c, r, core::Goal::up, &core::Supervisor::restart);
}

void Daemon::cmd_signal(ClientId c, const protocol::Request& r) {
  std::vector<std::string> names;
  if (auto err = read_names(r.args, names, true)) return server_->send_error(c, r.id, *err);
  auto sig = r.args.find("signal");
  int signo = 0;
  if (sig != r.args.end() && sig->is_number()) {
    // The protocol has checked the range; it is checked again where the number is
    // narrowed, so that no path can send a signal that was not asked for.
    const std::optional<int> n = protocol::to_integer<int>(*sig);
    if (!n || *n < 1 || *n > protocol::kMaxSignalNumber) {
      return server_->send_error(c, r.id,
                                 {code::bad_request, "no signal number " + sig->dump(), nullptr});
    }
    signo = *n;
  } else if (sig != r.args.end() && sig->is_string()) {
    auto parsed = config::parse_signal(sig->get<std::string>());
    if (auto* e = std::get_if<config::ParseError>(&parsed)) {
      return server_->send_error(c, r.id, {code::bad_request, "args.signal: " + e->message, nullptr});
    }
    signo = std::get<int>(parsed);
  } else {
    return server_->send_error(c, r.id, {code::bad_request, "args.signal: expected a signal name or number", nullptr});
  }
  auto picked = sup_.select(names, true);
  if (auto* e = std::get_if<core::SelectError>(&picked)) {
    return server_->send_error(c, r.id, {code::not_found, e->message, nullptr});
  }
  const auto& jobs = std::get<std::vector<core::Job*>>(picked);
  for (core::Job* job : jobs) {
    if (job->pid() == 0) {
      return server_->send_error(c, r.id, {code::not_running, job->name() + ": not running (" +
                                 std::string(core::to_string(job->state())) + ")", nullptr});
    }
  }
  json result = json::array();
  for (core::Job* job : jobs) {
    const pid_t target = job->spec().kill_group ? -job->pid() : job->pid();
    ::kill(target, signo);
    result.push_back({{"name", job->name()}, {"pid", job->pid()}, {"signal", config::signal_name(signo)}});
  }
  server_->send_result(c, r.id, result);
}

void Daemon::cmd_logs(ClientId c, const protocol::Request& r) {
  auto name = r.args.find("name");
  if (name == r.args.end() || !name->is_string()) {
    return server_->send_error(c, r.id, {code::bad_request, "args.name: expected a job name", nullptr});
  }
  std::string stream = "stdout";
  if (auto s = r.args.find("stream"); s != r.args.end()) {
    if (!s->is_string() || (*s != "stdout" && *s != "stderr")) {
      return server_->send_error(c, r.id, {code::bad_request, "args.stream: expected \"stdout\" or \"stderr\"", nullptr});
    }
    stream = s->get<std::string>();
  }
  std::size_t lines = 10;
  if (auto n = r.args.find("lines"); n != r.args.end()) {
    const std::optional<std::uint64_t> asked = protocol::to_integer<std::uint64_t>(*n);
    if (!asked) {
      return server_->send_error(c, r.id, {code::bad_request, "args.lines: expected a number of lines (0 or more)", nullptr});
    }
    // More lines than a size_t counts are more than any log holds: all of it.
    lines = static_cast<std::size_t>(std::min<std::uint64_t>(*asked, SIZE_MAX));
  }
  bool follow = false;
  if (auto err = read_bool(r.args, "follow", follow)) return server_->send_error(c, r.id, *err);
  auto picked = sup_.select_one(name->get<std::string>());
  if (auto* e = std::get_if<core::SelectError>(&picked)) {
    if (e->several) {
      return server_->send_error(
          c, r.id,
          {code::bad_request, "logs shows one job, but " + e->message + ": name one of them",
           nullptr});
    }
    return server_->send_error(c, r.id, {code::not_found, e->message, nullptr});
  }
  const core::Job* job = std::get<core::Job*>(picked);
  const auto& spec = job->spec();
  const config::Output& out = stream == "stdout" || spec.stderr_log.kind == config::Output::Kind::merge
                                  ? spec.stdout_log
                                  : spec.stderr_log;
  if (out.kind != config::Output::Kind::file) {
    return server_->send_error(c, r.id, {code::not_found, job->name() + ": " + stream + " is not logged (it goes to null)", nullptr});
  }
  if (follow) {
    // Merged stderr arrives on the stdout pipe.
    const bool merged = spec.stderr_log.kind == config::Output::Kind::merge;
    const auto s = stream == "stderr" && !merged ? JobOutput::Stream::err : JobOutput::Stream::out;
    followers_[job->name()].push_back({c, r.id, s, false, {}, 0});
  }
  // The file is read by the log writer, behind the output queued for it: the loop never
  // waits on the disk, and the tail ends where live output starts.
  ++answers_owed_[c];
  writer_->tail(out.path, lines, kMaxLogsBytes,
                [this, c, id = r.id, name = job->name(), stream, path = out.path](LogTail t) {
                  logs_read(c, id, name, stream, path, std::move(t));
                });
}

void Daemon::logs_read(ClientId c, const json& id, const std::string& job, const std::string& stream,
                       const std::string& path, LogTail tail) {
  if (!owed_done(c)) return;
  if (!tail.error.empty()) {
    server_->send_error(c, id, {code::internal, tail.error, nullptr});
  } else {
    json result = {{"name", job}, {"stream", stream}, {"path", path}, {"text", std::move(tail.text)}};
    if (tail.truncated) result["truncated"] = true;
    if (tail.missing) result["missing"] = true;
    server_->send_result(c, id, result);
  }
  if (auto it = followers_.find(job); it != followers_.end()) {
    for (auto f = it->second.begin(); f != it->second.end(); ++f) {
      if (f->client != c || f->id != id || f->answered) continue;
      server_->refund(c, f->backlog_bytes);  // sent now, or never
      if (!tail.error.empty()) {
        it->second.erase(f);  // an error ends the request, follow or not
        break;
      }
      f->answered = true;
      const std::vector<std::string> backlog = std::move(f->backlog);
      if (f->ended) {
        // Its job went while the tail was read: the backlog ends with the `end` event.
        it->second.erase(f);
        if (it->second.empty()) followers_.erase(it);
      } else {
        f->backlog = {};
        f->backlog_bytes = 0;
      }
      // Sent last: a send that fails drops the client, which edits followers_.
      for (const auto& event : backlog) server_->send(c, event);
      break;
    }
  }
  close_if_done(c);
}

void Daemon::end_follows(const std::string& job, const std::string& reason) {
  auto it = followers_.find(job);
  if (it == followers_.end()) return;
  const json fields = {{"name", job}, {"reason", reason}};
  std::vector<std::pair<ClientId, std::string>> ends;
  auto& list = it->second;
  for (auto f = list.begin(); f != list.end();) {
    if (f->ended) {
      ++f;
      continue;
    }
    std::string event = protocol::encode_event(f->id, "end", fields);
    if (!f->answered) {
      // Its tail is still being read: the end goes out behind it (logs_read).
      f->backlog.push_back(std::move(event));
      f->ended = true;
      ++f;
      continue;
    }
    ends.emplace_back(f->client, std::move(event));
    f = list.erase(f);
  }
  if (list.empty()) followers_.erase(it);
  // Sent once the list is settled: a send that fails drops its client, and dropping a
  // client edits followers_.
  for (const auto& [client, event] : ends) {
    server_->send(client, event);
    close_if_done(client);
  }
}

void Daemon::cmd_events(ClientId c, const protocol::Request& r) {
  event_subscribers_[c] = r.id;
  server_->send_result(c, r.id, {{"subscribed", true}});
}

void Daemon::cmd_reload(ClientId c, const protocol::Request& r) {
  auto result = reload();
  release_memory_soon();
  if (auto* errors = std::get_if<std::vector<std::string>>(&result)) {
    std::string msg = "config not loaded, nothing changed: " + std::to_string(errors->size()) +
                      (errors->size() == 1 ? " error" : " errors");
    return server_->send_error(c, r.id, {code::config_error, msg, {{"errors", *errors}}});
  }
  server_->send_result(c, r.id, core::reload_json(std::get<core::ReloadReport>(result)));
}

// The loader ran again: its code and heap go back as at start, once the answer has been
// written and the client served (done at once, a third of it was touched again after).
void Daemon::release_memory_soon() {
  if (!trim_timer_) trim_timer_ = std::make_unique<Timer>(&loop_, [] { release_startup_memory(); });
  trim_timer_->start(100);
}

void Daemon::cmd_reopen_logs(ClientId c, const protocol::Request& r) {
  // The answer waits for the reopen: logrotate's postrotate may compress the moved file
  // right after `vigilctl reopen-logs` returns.
  ++answers_owed_[c];
  reopen_logs([this, c, id = r.id] {
    if (!owed_done(c)) return;
    server_->send_result(c, id, json::object());
    close_if_done(c);
  });
}

bool Daemon::owed_done(ClientId c) {
  if (!server_) return false;  // at exit: the writer's last answers go to nobody
  auto owed = answers_owed_.find(c);
  if (owed == answers_owed_.end()) return false;  // the client went away meanwhile
  if (--owed->second == 0) answers_owed_.erase(owed);
  return true;
}

void Daemon::cmd_shutdown(ClientId c, const protocol::Request& r) {
  server_->send_result(c, r.id, json::object());
  begin_shutdown("requested by a client");
}

}  // namespace vigil
