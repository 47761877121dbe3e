// vigild's event loop: it turns signals, timers, child exits and control requests into
// calls on the core Supervisor, and carries out the Effects the core asks for. This and
// the other files beside it are the only code that touches libuv and the kernel.
#pragma once

#include <sys/resource.h>
#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "control_server.h"
#include "deadlines.h"
#include "effects.h"
#include "job_output.h"
#include "loader.h"
#include "log_writer.h"
#include "logger.h"
#include "pacer.h"
#include "pidfile.h"
#include "spawner.h"
#include "strays.h"
#include "supervisor.h"
#include "uv_handle.h"
#include "watchdog.h"

namespace vigil {

class Daemon : public ControlServer::Handler {
 public:
  Daemon(config::Config cfg, config::Environment env, Logger& log);
  ~Daemon() override;

  // Takes the pidfile, binds the socket and installs signal handlers. Returns "" or the
  // reason the daemon cannot run (reported through the readiness handshake).
  std::string prepare();
  // Starts the autostart jobs and runs until shutdown. Returns the exit code.
  int run();

  // ControlServer::Handler
  void on_request(ControlServer::ClientId client, const Peer& peer,
                  protocol::Request req) override;
  void on_disconnect(ControlServer::ClientId client) override;
  bool on_input_closed(ControlServer::ClientId client) override;

 private:
  using Handler = void (Daemon::*)(ControlServer::ClientId, const protocol::Request&);
  struct PendingReply {
    ControlServer::ClientId client;
    protocol::json id;
  };
  struct Follower {
    ControlServer::ClientId client;
    protocol::json id;
    JobOutput::Stream stream;
    // Until the answer (the tail) is out, live output waits here, so the follower sees
    // every line once and in order: what the tail has, then what came after it.
    bool answered = false;
    std::vector<std::string> backlog;  // encoded events
    std::size_t backlog_bytes = 0;
    // The follow is over (its job was removed): the `end` event waits in the backlog
    // behind the answer, and nothing more is added.
    bool ended = false;
  };

  core::Instant now();
  // The job's output capture, made on first use and kept in step with its definition.
  JobOutput& output_for(const core::Job& job);
  void on_output(const std::string& job, JobOutput::Stream stream, std::string_view text);
  void run_effects();
  void run_effect(const core::Effect& effect);
  void spawn_done(const std::string& job, const SpawnResult& r);
  void on_sigchld();
  // What jobs left beyond their leaders' process groups (strays.h), told to the core.
  // Now: before a stop (so that it reaches them), and when a leader exits on its own (so
  // that its job's next state knows); soon (sweep_soon, once for a burst of exits) when
  // leaders exit on their way down and when orphans are reaped.
  void sweep_strays();
  void sweep_soon();
  // A sweep that is due runs now, before a request that would act on a stale picture.
  void flush_sweep();
  void on_job_timers();
  void arm_job_timer();
  // The orphan guard: (re)started at once, then after a delay that grows while it keeps
  // failing (guard_pacer_).
  void start_guard();
  void on_guard_exit(const core::ExitStatus& e);
  void retry_guard_later(const std::string& what, std::chrono::milliseconds delay);
  void begin_shutdown(const std::string& why);
  void maybe_finish();
  void finish();
  // Re-reads the config. Returns the report, or the located errors (nothing changed).
  std::variant<core::ReloadReport, std::vector<std::string>> reload();
  void release_memory_soon();
  // Reopens every log; `done` runs once they are.
  void reopen_logs(std::function<void()> done = {});
  // One answer owed to c is being given: false when c has gone meanwhile.
  bool owed_done(ControlServer::ClientId c);
  // The tail a `logs` request asked for is read: answer it, and let a follower go live.
  void logs_read(ControlServer::ClientId c, const protocol::json& id, const std::string& job,
                 const std::string& stream, const std::string& path, LogTail tail);
  // A client whose input is closed goes once nothing more is owed to it.
  void close_if_done(ControlServer::ClientId c);
  // Ends every follow of `job`'s log: each follower gets an `end` event with `reason`
  // (after the answer it still waits for, if any), and the request is done.
  void end_follows(const std::string& job, const std::string& reason);

  // Command handlers, one per protocol command (see the registry in daemon.cc).
  void cmd_version(ControlServer::ClientId c, const protocol::Request& r);
  void cmd_status(ControlServer::ClientId c, const protocol::Request& r);
  void cmd_start(ControlServer::ClientId c, const protocol::Request& r);
  void cmd_stop(ControlServer::ClientId c, const protocol::Request& r);
  void cmd_restart(ControlServer::ClientId c, const protocol::Request& r);
  void cmd_signal(ControlServer::ClientId c, const protocol::Request& r);
  void cmd_logs(ControlServer::ClientId c, const protocol::Request& r);
  void cmd_events(ControlServer::ClientId c, const protocol::Request& r);
  void cmd_reload(ControlServer::ClientId c, const protocol::Request& r);
  void cmd_reopen_logs(ControlServer::ClientId c, const protocol::Request& r);
  void cmd_shutdown(ControlServer::ClientId c, const protocol::Request& r);
  void change_jobs(ControlServer::ClientId c, const protocol::Request& r, core::Goal goal,
                   void (core::Supervisor::*op)(const std::vector<core::Job*>&,
                                                const core::Instant&, core::Effects&));
  static const std::map<std::string, Handler, std::less<>>& registry();

  // Sizes the log writer's set of open files to what the jobs' pipes leave of the
  // descriptor limit; says so in the log when the jobs cannot all run within it.
  void budget_descriptors(const std::vector<config::JobSpec>& jobs, const char* when);

  config::Config cfg_;
  config::Environment env_;
  Logger& log_;
  rlim_t fd_limit_ = 0;  // RLIMIT_NOFILE as vigild raised it
  uv_loop_t loop_{};
  core::Supervisor sup_;
  core::Effects fx_;
  // Marks jobs' processes and finds them beyond their groups (before the spawner, which
  // marks with its id).
  StrayFinder strays_{new_daemon_id()};
  std::unique_ptr<Spawner> spawner_;
  // Declared before the outputs that write through it, so it outlives them.
  std::unique_ptr<LogWriter> writer_;
  std::map<std::string, std::unique_ptr<JobOutput>> outputs_;
  std::map<std::string, std::vector<Follower>> followers_;  // job -> live `logs -f` clients
  // Answers that wait for the log writer (`logs`, `reopen_logs`), per client.
  std::map<ControlServer::ClientId, int> answers_owed_;
  std::unique_ptr<ControlServer> server_;
  Pidfile pidfile_;
  Watchdog watchdog_;
  std::unique_ptr<Timer> guard_timer_;  // armed only while a guard restart is pending
  std::unique_ptr<Timer> trim_timer_;   // armed for a moment after a reload
  core::RestartPacer guard_pacer_ = core::guard_pacer();
  std::vector<std::unique_ptr<SignalWatcher>> signals_;
  core::Deadlines deadlines_;           // every job's timer ...
  std::unique_ptr<Timer> job_timer_;   // ... on this one, armed for the earliest
  std::unique_ptr<Timer> shutdown_timer_;
  std::map<std::uint64_t, PendingReply> waiting_;  // core waiter id -> who asked
  // The last sweep: every process it found (pid -> start time, which KillStrays checks),
  // and the jobs it found some of (they hear of it when none are left).
  std::map<pid_t, unsigned long long> stray_start_;
  std::set<std::string> with_strays_;
  std::unique_ptr<Timer> sweep_timer_;  // armed only while a sweep is due
  bool sweep_due_ = false;
  std::chrono::milliseconds last_sweep_{-3600000};
  bool final_sweep_done_ = false;  // at shutdown, once every job is down
  std::map<ControlServer::ClientId, protocol::json> event_subscribers_;  // client -> req id
  bool shutting_down_ = false;
  bool finished_ = false;
  int exit_code_ = 0;
};

}  // namespace vigil
