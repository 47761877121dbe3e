// fork + exec of job processes. The child runs only async-signal-safe calls: everything it
// needs (argv, envp, ids, descriptors) is prepared by the parent before the fork.
#include "spawner.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>

#include "accounts.h"
#include "fsutil.h"
#include "job_output.h"

namespace vigil {

namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// What the child reports through the error pipe when a step fails.
enum class Stage : int { setsid, stdio, chdir, groups, gid, uid, exec };
struct ChildReport {
  Stage stage;
  int err;
};

// Sets NAME=value in an environment list, replacing an earlier NAME.
void set_env(std::vector<std::string>& env, const std::string& name, const std::string& value) {
  const std::string prefix = name + "=";
  for (auto& e : env) {
    if (e.compare(0, prefix.size(), prefix) == 0) {
      e = prefix + value;
      return;
    }
  }
  env.push_back(prefix + value);
}

std::optional<std::string> get_env(const std::vector<std::string>& env, const std::string& name) {
  const std::string prefix = name + "=";
  for (const auto& e : env) {
    if (e.compare(0, prefix.size(), prefix) == 0) return e.substr(prefix.size());
  }
  return std::nullopt;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Closes every descriptor from `low` up, but `keep`.
void close_from(int low, int keep) {
  if (keep >= low) {
    if (keep > low) ::syscall(SYS_close_range, low, keep - 1, 0);
    ::syscall(SYS_close_range, keep + 1, ~0U, 0);
  } else {
    ::syscall(SYS_close_range, low, ~0U, 0);
  }
}

[[noreturn]] void child_fail(int fd, Stage stage) {
  ChildReport r{stage, errno};
  ssize_t n = ::write(fd, &r, sizeof r);
  (void)n;
  ::_exit(127);
}

struct ChildPlan {
  const char* path;
  char* const* argv;
  char* const* envp;
  const char* cwd;
  mode_t umask;
  struct rlimit nofile;
  int stdin_fd, stdout_fd, stderr_fd;
  bool switch_ids;
  uid_t uid;
  gid_t gid;
  const gid_t* groups;
  std::size_t ngroups;
  int report_fd;
};

// Runs in the child, between fork and exec: async-signal-safe calls only.
[[noreturn]] void child_exec(const ChildPlan& p) {
  // A clean slate: signals the daemon handles or ignores get their defaults back, and
  // none stays blocked.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  // Its own session and process group, so a stop reaches the whole job and nothing else.
  if (::setsid() < 0) child_fail(p.report_fd, Stage::setsid);

  if (::dup2(p.stdin_fd, 0) < 0 || ::dup2(p.stdout_fd, 1) < 0 || ::dup2(p.stderr_fd, 2) < 0) {
    child_fail(p.report_fd, Stage::stdio);
  }
  close_from(3, p.report_fd);

  ::umask(p.umask);
  ::setrlimit(RLIMIT_NOFILE, &p.nofile);
  if (::chdir(p.cwd) < 0) child_fail(p.report_fd, Stage::chdir);
  if (p.switch_ids) {
    if (::setgroups(p.ngroups, p.groups) < 0) child_fail(p.report_fd, Stage::groups);
    if (::setgid(p.gid) < 0) child_fail(p.report_fd, Stage::gid);
    if (::setuid(p.uid) < 0) child_fail(p.report_fd, Stage::uid);
  }
  ::execve(p.path, p.argv, p.envp);
  child_fail(p.report_fd, Stage::exec);
}

}  // namespace

std::string find_in_path(const std::string& file, const std::string& path) {
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + file;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return {};
}

bool Spawner::is_internal_variable(const std::string& name) {
  return name == "NOTIFY_SOCKET" || name == "LISTEN_FDS" || name == "LISTEN_PID" ||
         name == "LISTEN_FDNAMES" || name == "WATCHDOG_USEC" || name == "WATCHDOG_PID" ||
         name.rfind("VIGIL_INTERNAL_", 0) == 0;
}

Spawner::Spawner(std::vector<std::string> base_env, mode_t umask, struct rlimit nofile)
    : base_env_(std::move(base_env)), umask_(umask), nofile_(nofile) {
  devnull_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

SpawnResult Spawner::spawn(const config::JobSpec& spec, const ChildStdio& io) {
  if (spec.argv.empty()) return {0, "empty command"};

  std::vector<std::string> env = base_env_;
  for (const auto& [k, v] : spec.env) set_env(env, k, v);

  ChildPlan plan{};
  std::vector<gid_t> groups;
  if (spec.user || spec.group) {
    plan.switch_ids = true;
    plan.uid = ::geteuid();
    plan.gid = ::getegid();
    if (spec.user) {
      auto acct = accounts::find_user(*spec.user);
      if (!acct) return {0, "unknown user '" + *spec.user + "'"};
      plan.uid = acct->uid;
      plan.gid = acct->gid;
      // What login would set, unless the job sets it itself.
      for (const auto& [name, value] : {std::pair<std::string, std::string>{"HOME", acct->home},
                                        {"USER", acct->name},
                                        {"LOGNAME", acct->name},
                                        {"SHELL", acct->shell}}) {
        bool own = false;
        for (const auto& kv : spec.env) own = own || kv.first == name;
        if (!own) set_env(env, name, value);
      }
      if (spec.group) {
        auto g = accounts::find_group(*spec.group);
        if (!g) return {0, "unknown group '" + *spec.group + "'"};
        plan.gid = *g;
      }
      groups = accounts::groups_of(acct->name, plan.gid);
    } else {
      auto g = accounts::find_group(*spec.group);
      if (!g) return {0, "unknown group '" + *spec.group + "'"};
      plan.gid = *g;
      groups = {plan.gid};
    }
    if (::geteuid() != 0) {
      if (plan.uid != ::geteuid() || plan.gid != ::getegid()) {
        return {0, "cannot change user or group: vigild is not running as root"};
      }
      plan.switch_ids = false;  // already who the job wants to be
    }
  }

  const std::string& argv0 = spec.argv[0];
  std::string path = argv0;
  if (argv0.find('/') == std::string::npos) {
    std::string search = get_env(env, "PATH").value_or(kDefaultPath);
    path = find_in_path(argv0, search);
    if (path.empty()) return {0, "cannot exec " + argv0 + ": not found in PATH (" + search + ")"};
  }

  std::vector<std::string> argv_store = spec.argv;
  auto argv = c_strings(argv_store);
  auto envp = c_strings(env);

  int report[2];
  if (::pipe2(report, O_CLOEXEC) < 0) return {0, "cannot create a pipe: " + fs::errno_text(errno)};

  plan.path = path.c_str();
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.cwd = spec.cwd.c_str();
  plan.umask = spec.umask.value_or(umask_);
  plan.nofile = nofile_;
  plan.stdin_fd = devnull_;
  plan.stdout_fd = io.out;
  plan.stderr_fd = io.err;
  plan.groups = groups.data();
  plan.ngroups = groups.size();
  plan.report_fd = report[1];

  const pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(report[0]);
    ::close(report[1]);
    return {0, "cannot fork: " + fs::errno_text(err)};
  }
  if (pid == 0) child_exec(plan);

  ::close(report[1]);
  ChildReport r{};
  ssize_t n;
  do {
    n = ::read(report[0], &r, sizeof r);
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n != static_cast<ssize_t>(sizeof r)) return {pid, {}};  // EOF: exec succeeded

  // The child failed before exec and is exiting now: reap it here, so it is never
  // mistaken for a job's exit or an orphan.
  ::waitpid(pid, nullptr, 0);
  std::string why = fs::errno_text(r.err);
  switch (r.stage) {
    case Stage::setsid: return {0, "cannot create a session: " + why};
    case Stage::stdio: return {0, "cannot set up stdin/stdout/stderr: " + why};
    case Stage::chdir: return {0, "cannot chdir to " + spec.cwd + ": " + why};
    case Stage::groups:
    case Stage::gid:
    case Stage::uid:
      return {0, "cannot switch to user " + spec.user.value_or("?") + ": " + why};
    case Stage::exec: return {0, "cannot exec " + path + ": " + why};
  }
  return {0, "cannot start: " + why};
}

}  // namespace vigil
