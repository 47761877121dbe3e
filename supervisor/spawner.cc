// clone + exec of job processes, posix_spawn style. The child shares the daemon's memory
// (CLONE_VM: no page tables copied, no copy-on-write faults afterwards, whatever the
// daemon's size) and runs on a small stack of its own until it execs. It runs only raw
// system calls on data the parent prepared beforehand (argv, envp, ids, descriptors) and
// writes nothing but its failure report: no libc wrapper, which could touch errno or
// locks the daemon's threads use. The report (which step failed, and its errno) goes
// through a close-on-exec pipe: a child that execs closes it unwritten, so the parent
// reads either end of file (the job runs) or why it does not. The parent does not wait
// for each exec: it starts every child of a batch, then collects them all, so the execs
// of a batch overlap.
//
// The child shares the daemon's descriptor table too (CLONE_FILES), and its first step is
// to take a private copy of only the low descriptors, up to the highest one it needs
// (close_range with CLOSE_RANGE_UNSHARE). vigild keeps what it holds per job (pipe read
// ends, log files) above a base of its own (fs::keep_long_lived), so that copy is a few
// dozen entries. A plain clone would copy the whole table, two entries or more per job,
// and the child would then close them all one by one: with 1000 jobs that was most of
// the cost of a spawn. The descriptors a child needs are the parent's until the child has
// exec'd (Child::io), so none of them can go from under it while the table is shared.
#include "spawner.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/futex.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <optional>

#include "accounts.h"
#include "fd_budget.h"
#include "fsutil.h"
#include "job_output.h"
#include "strays.h"

namespace vigil {

namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Children between clone and exec at once: beyond this, the oldest is waited for first.
constexpr std::size_t kMaxInFlight = kMaxSpawnsInFlight;  // fd_budget.h
// A child's stack, and the guard page below it. The child's frames are small; the room
// is for a sanitizer build's bigger ones.
constexpr std::size_t kStackSize = 64 * 1024;
constexpr std::size_t kGuardSize = 4096;

// A system call with no libc wrapper around it: it returns -errno and touches no errno,
// no lock and no sanitizer runtime. This is what lets the child run concurrently with
// the daemon in the daemon's memory. Elsewhere, the parent waits for each exec
// (CLONE_VFORK), and libc's syscall() is safe.
#if defined(__x86_64__)
constexpr bool kConcurrentChildren = true;
[[gnu::always_inline]] inline long raw_syscall(long n, long a = 0, long b = 0, long c = 0,
                                               long d = 0) {
  long ret;
  register long r10 asm("r10") = d;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
               : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
constexpr bool kConcurrentChildren = true;
[[gnu::always_inline]] inline long raw_syscall(long n, long a = 0, long b = 0, long c = 0,
                                               long d = 0) {
  register long x8 asm("x8") = n;
  register long x0 asm("x0") = a;
  register long x1 asm("x1") = b;
  register long x2 asm("x2") = c;
  register long x3 asm("x3") = d;
  asm volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
  return x0;
}
#else
constexpr bool kConcurrentChildren = false;
inline long raw_syscall(long n, long a = 0, long b = 0, long c = 0, long d = 0) {
  long r = ::syscall(n, a, b, c, d);
  return r < 0 ? -errno : r;
}
#endif

template <typename... Args>
[[gnu::always_inline]] inline long sys(long n, Args... args) {
  return raw_syscall(n, (long)(args)...);
}

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

void c_strings(std::vector<std::string>& v, std::vector<char*>& out) {
  out.clear();
  out.reserve(v.size() + 1);
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
}

// What the child leaves for the parent when a step fails, before it exits.
enum class Stage : int { none, files, setsid, stdio, chdir, groups, gid, uid, exec };

// Makes `from` the child's descriptor `to`, without close-on-exec.
[[gnu::always_inline]] inline long move_fd(int from, int to) {
  if (from == to) return sys(SYS_fcntl, to, F_SETFD, 0);
  return sys(SYS_dup3, from, to, 0);
}

}  // namespace

// Everything one child reads, kept alive (and unmoved) until it has exec'd or exited.
struct Spawner::Child {
  std::string job;
  SpawnResult result;  // pid, or why not
  // The plan, prepared by the parent.
  std::string path, cwd, user;
  std::vector<std::string> argv_store, env_store;
  std::vector<char*> argv, envp;
  std::vector<gid_t> groups;
  mode_t umask = 022;
  struct rlimit nofile {};
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
  int low_end = 0;           // one past the highest descriptor the child needs
  bool shared_files = true;  // cloned with CLONE_FILES: must take its own table first
  // The job's stdout and stderr, owned from the clone until the child has exec'd.
  ChildStdio io;
  bool switch_ids = false;
  uid_t uid = 0;
  gid_t gid = 0;
  // What the child reads: plain pointers into the above, so it calls no function.
  const char* path_c = nullptr;
  const char* cwd_c = nullptr;
  char* const* argv_c = nullptr;
  char* const* envp_c = nullptr;
  const gid_t* groups_c = nullptr;
  std::size_t ngroups = 0;
  pid_t pid = 0;
  // The report pipe: the child writes to its copy of report_w; the parent reads report_r.
  // Two fields, as the child reads this memory while the parent goes on.
  int report_w = -1, report_r = -1;
  // Non-zero while the child may still read this: the kernel clears it and wakes a
  // futex waiter when the child execs or exits (CLONE_CHILD_CLEARTID).
  pid_t alive = 0;
  void* stack = nullptr;  // kGuardSize + kStackSize, owned

  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (stack != nullptr) ::munmap(stack, kGuardSize + kStackSize);
  }
  // Closes what the child no longer needs once it has exec'd or exited.
  void release() {
    ChildStdio done;
    std::swap(done.out, io.out);
    std::swap(done.err, io.err);
    if (report_w >= 0) ::close(report_w);
    report_w = -1;
  }
};

namespace {

// What a child that could not exec writes on its report pipe.
struct Report {
  Stage stage;
  int err;
};

// Gives a child cloned with CLONE_FILES a descriptor table of its own, holding only the
// daemon's descriptors below `end`: the rest are never copied, so they need no closing
// either. A kernel older than 5.9 has no CLOSE_RANGE_UNSHARE: the whole table is copied,
// then closed above `end`. Returns 0 or -errno.
[[gnu::always_inline]] inline long own_table(unsigned end) {
  if (sys(SYS_close_range, end, ~0U, CLOSE_RANGE_UNSHARE) == 0) return 0;
  if (long rc = sys(SYS_unshare, CLONE_FILES); rc < 0) return rc;
  sys(SYS_close_range, end, ~0U, 0);
  return 0;
}

[[noreturn, gnu::always_inline]] inline void child_fail(Spawner::Child& c, Stage stage, long rc) {
  const Report r{stage, static_cast<int>(-rc)};
  sys(SYS_write, c.report_w, &r, sizeof r);  // one small write to a pipe: all or nothing
  for (;;) sys(SYS_exit, 127);
}

// Runs in the child, between clone and exec, on its own stack, in the daemon's memory:
// raw system calls only, no write but the report. Every signal is blocked on entry (see
// Spawner::start), so no handler of the daemon's can run here. Not instrumented: the
// sanitizers' bookkeeping is the daemon's, not the child's. (__attribute__, because
// clang does not know [[gnu::no_sanitize]].)
__attribute__((no_sanitize("address", "undefined"), noinline)) int child_main(void* arg) {
  auto& c = *static_cast<Spawner::Child*>(arg);
  // A clean slate: signals the daemon handles or ignores get their defaults back (an
  // all-zero kernel sigaction is SIG_DFL, whatever the architecture's layout), and none
  // stays blocked.
  unsigned long dfl[4] = {0, 0, 0, 0};
  for (int sig = 1; sig < _NSIG; ++sig) sys(SYS_rt_sigaction, sig, dfl, nullptr, _NSIG / 8);
  unsigned long none = 0;
  sys(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, _NSIG / 8);

  // A descriptor table of its own, with only the descriptors below c.low_end in it.
  // Without a shared table (see Spawner::probe_shared_files) the copy is the clone's.
  if (!c.shared_files) {
    sys(SYS_close_range, c.low_end, ~0U, 0);  // exec closes them anyway: all close-on-exec
  } else if (long rc = own_table(c.low_end); rc < 0) {
    child_fail(c, Stage::files, rc);
  }
  // Its own session and process group, so a stop reaches the whole job and nothing else.
  if (long rc = sys(SYS_setsid); rc < 0) child_fail(c, Stage::setsid, rc);
  if (long rc = move_fd(c.stdin_fd, 0); rc < 0) child_fail(c, Stage::stdio, rc);
  if (long rc = move_fd(c.stdout_fd, 1); rc < 0) child_fail(c, Stage::stdio, rc);
  if (long rc = move_fd(c.stderr_fd, 2); rc < 0) child_fail(c, Stage::stdio, rc);
  // Nothing else of the daemon's: its descriptors are close-on-exec already, this makes
  // sure of any a library opened without it. The report pipe stays (close-on-exec).
  if (c.report_w > 3) sys(SYS_close_range, 3, c.report_w - 1, 0);
  if (c.report_w + 1 < c.low_end) sys(SYS_close_range, c.report_w + 1, c.low_end - 1, 0);

  sys(SYS_umask, c.umask);
  sys(SYS_prlimit64, 0, RLIMIT_NOFILE, &c.nofile, nullptr);
  if (long rc = sys(SYS_chdir, c.cwd_c); rc < 0) child_fail(c, Stage::chdir, rc);
  if (c.switch_ids) {
    // The raw calls change this process only, which is all there is to change here
    // (libc's would try to change the daemon's other threads too).
    if (long rc = sys(SYS_setgroups, c.ngroups, c.groups_c); rc < 0) {
      child_fail(c, Stage::groups, rc);
    }
    if (long rc = sys(SYS_setgid, c.gid); rc < 0) child_fail(c, Stage::gid, rc);
    if (long rc = sys(SYS_setuid, c.uid); rc < 0) child_fail(c, Stage::uid, rc);
  }
  long rc = sys(SYS_execve, c.path_c, c.argv_c, c.envp_c);
  child_fail(c, Stage::exec, rc);
}

}  // namespace

std::string find_in_path(const std::string& file, const std::string& path) {
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    // An empty entry is the current directory.
    std::string candidate = end > start ? path.substr(start, end - start) : std::string(1, '.');
    candidate.append(1, '/').append(file);
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

namespace {

// The probe's child: can it get a descriptor table of its own, the way child_main does?
__attribute__((no_sanitize("address", "undefined"), noinline)) int probe_main(void*) {
  return own_table(~0U) == 0 ? 0 : 1;
}

}  // namespace

bool Spawner::probe_shared_files() {
  // A seccomp filter (a container runtime's, written before close_range existed, and one
  // that allows unshare only with CAP_SYS_ADMIN) can forbid both ways out of a shared
  // table; then children are cloned with a copy of it, as fork does. One clone, at start.
  constexpr std::size_t kProbeStack = 16 * 1024;
  void* stack = ::mmap(nullptr, kProbeStack, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return false;
  sigset_t all, saved;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &saved);
  const pid_t pid = ::clone(probe_main, static_cast<char*>(stack) + kProbeStack,
                            CLONE_VM | CLONE_FILES | CLONE_VFORK | SIGCHLD, nullptr);
  ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  int status = 0;
  const bool ok =
      pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  ::munmap(stack, kProbeStack);
  return ok;
}

Spawner::Spawner(std::vector<std::string> base_env, mode_t umask, struct rlimit nofile,
                 std::string daemon_id)
    : base_env_(std::move(base_env)),
      daemon_id_(std::move(daemon_id)),
      umask_(umask),
      nofile_(nofile) {
  devnull_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  shared_files_ = probe_shared_files();
}

Spawner::~Spawner() {
  collect();
  if (devnull_ >= 0) ::close(devnull_);
}

// Fills in everything the child needs, or says why there is no point starting it.
std::string Spawner::plan(Child& c, const config::JobSpec& spec, const ChildStdio& io,
                          std::uint64_t run) {
  if (spec.argv.empty()) return "empty command";

  c.env_store = base_env_;
  for (const auto& [k, v] : spec.env) set_env(c.env_store, k, v);
  // The mark, which nothing in the job's definition can change, first: a reader that
  // looks at the start of an environment finds it there.
  auto marks = mark_entries(daemon_id_, spec.name, run);
  for (const auto& m : marks) {
    const std::string prefix = m.substr(0, m.find('=') + 1);
    c.env_store.erase(std::remove_if(c.env_store.begin(), c.env_store.end(),
                                     [&](const std::string& e) {
                                       return e.compare(0, prefix.size(), prefix) == 0;
                                     }),
                      c.env_store.end());
  }
  c.env_store.insert(c.env_store.begin(), std::make_move_iterator(marks.begin()),
                     std::make_move_iterator(marks.end()));

  if (spec.user || spec.group) {
    c.switch_ids = true;
    c.uid = ::geteuid();
    c.gid = ::getegid();
    if (spec.user) {
      auto acct = accounts::find_user(*spec.user);
      if (!acct) return "unknown user '" + *spec.user + "'";
      c.user = *spec.user;
      c.uid = acct->uid;
      c.gid = acct->gid;
      // What login would set, unless the job sets it itself.
      for (const auto& [name, value] : {std::pair<std::string, std::string>{"HOME", acct->home},
                                        {"USER", acct->name},
                                        {"LOGNAME", acct->name},
                                        {"SHELL", acct->shell}}) {
        bool own = false;
        for (const auto& kv : spec.env) own = own || kv.first == name;
        if (!own) set_env(c.env_store, name, value);
      }
      if (spec.group) {
        auto g = accounts::find_group(*spec.group);
        if (!g) return "unknown group '" + *spec.group + "'";
        c.gid = *g;
      }
      c.groups = accounts::groups_of(acct->name, c.gid);
    } else {
      auto g = accounts::find_group(*spec.group);
      if (!g) return "unknown group '" + *spec.group + "'";
      c.gid = *g;
      c.groups = {c.gid};
    }
    if (::geteuid() != 0) {
      if (c.uid != ::geteuid() || c.gid != ::getegid()) {
        return "cannot change user or group: vigild is not running as root";
      }
      c.switch_ids = false;  // already who the job wants to be
    }
  }

  const std::string& argv0 = spec.argv[0];
  c.path = argv0;
  if (argv0.find('/') == std::string::npos) {
    std::string search = get_env(c.env_store, "PATH").value_or(kDefaultPath);
    // Looked up once per batch (1000 jobs of one program: one lookup, not 1000 times a
    // stat per folder of PATH).
    std::string key = search + '\0' + argv0;
    auto found = found_in_path_.find(key);
    if (found == found_in_path_.end()) {
      found = found_in_path_.emplace(std::move(key), find_in_path(argv0, search)).first;
    }
    c.path = found->second;
    if (c.path.empty()) return "cannot exec " + argv0 + ": not found in PATH (" + search + ")";
  }

  c.argv_store = spec.argv;
  c_strings(c.argv_store, c.argv);
  c_strings(c.env_store, c.envp);
  c.cwd = spec.cwd;
  c.umask = spec.umask.value_or(umask_);
  c.nofile = nofile_;
  c.stdin_fd = devnull_;
  c.stdout_fd = io.out;
  c.stderr_fd = io.err;

  c.path_c = c.path.c_str();
  c.cwd_c = c.cwd.c_str();
  c.argv_c = c.argv.data();
  c.envp_c = c.envp.data();
  c.groups_c = c.groups.data();
  c.ngroups = c.groups.size();
  return {};
}

void Spawner::start(const std::string& job, const config::JobSpec& spec, ChildStdio& io,
                    std::uint64_t run) {
  // Children that have exec'd already make room, without a wait.
  while (!in_flight_.empty() && __atomic_load_n(&in_flight_.front()->alive, __ATOMIC_ACQUIRE) == 0) {
    settle_oldest();
  }
  if (in_flight_.size() == kMaxInFlight) settle_oldest();

  std::unique_ptr<Child> child;
  if (spare_.empty()) {
    child = std::make_unique<Child>();
    void* stack = ::mmap(nullptr, kGuardSize + kStackSize, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
      done_.push_back({job, {0, "cannot fork: no memory for a stack: " + fs::errno_text(errno)}});
      return;
    }
    ::mprotect(stack, kGuardSize, PROT_NONE);  // the stack grows down, into this
    child->stack = stack;
  } else {
    child = std::move(spare_.back());
    spare_.pop_back();
  }
  Child& c = *child;
  c.job = job;
  c.switch_ids = false;
  c.user.clear();
  c.groups.clear();
  if (auto why = plan(c, spec, io, run); !why.empty()) {
    done_.push_back({job, {0, std::move(why)}});
    spare_.push_back(std::move(child));
    return;
  }

  int report[2];
  if (::pipe2(report, O_CLOEXEC) < 0) {
    done_.push_back({job, {0, "cannot fork: no pipe for its report: " + fs::errno_text(errno)}});
    spare_.push_back(std::move(child));
    return;
  }
  c.report_r = report[0];
  c.report_w = report[1];
  c.low_end = std::max({c.stdin_fd, c.stdout_fd, c.stderr_fd, c.report_w}) + 1;

  // No signal may reach a handler of the daemon's in a child that shares its memory:
  // block them all across the clone (the child unblocks them once they are defaults).
  sigset_t all, saved;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &saved);
  c.alive = 1;
  c.shared_files = shared_files_;
  int flags = CLONE_VM | CLONE_CHILD_CLEARTID | SIGCHLD;
  if (shared_files_) flags |= CLONE_FILES;
  if (!kConcurrentChildren) flags |= CLONE_VFORK;
  char* top = static_cast<char*>(c.stack) + kGuardSize + kStackSize;
  const pid_t pid = ::clone(child_main, top, flags, &c, nullptr, nullptr, &c.alive);
  const int clone_err = errno;
  ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (pid < 0) {
    c.alive = 0;
    c.release();
    ::close(report[0]);
    done_.push_back({job, {0, "cannot fork: " + fs::errno_text(clone_err)}});
    spare_.push_back(std::move(child));
    return;
  }
  c.pid = pid;
  // The child reads them from the table it shares with us until it has its own copy.
  std::swap(c.io.out, io.out);
  std::swap(c.io.err, io.err);
  in_flight_.push_back(std::move(child));
}

// Waits until the oldest child has exec'd or exited, then reads its report.
void Spawner::settle_oldest() {
  std::unique_ptr<Child> child = std::move(in_flight_.front());
  in_flight_.pop_front();
  Child& c = *child;
  for (;;) {
    const pid_t v = __atomic_load_n(&c.alive, __ATOMIC_ACQUIRE);
    if (v == 0) break;
    ::syscall(SYS_futex, &c.alive, FUTEX_WAIT, v, nullptr, nullptr, 0);
  }
  // Past its exec (or its exit) the child no longer uses this memory, nor our
  // descriptors. Its report comes next: end of file once the exec closed the pipe (and
  // we closed our end), or why it did not exec. Either is a moment away, so this read
  // waits no longer than the futex did. (A child started after this one may hold a copy
  // of the write end for as long as it takes to reach its own close_range.)
  c.release();
  Report report{Stage::none, 0};
  ssize_t n;
  do {
    n = ::read(c.report_r, &report, sizeof report);
  } while (n < 0 && errno == EINTR);
  ::close(c.report_r);
  c.report_r = -1;
  if (n != static_cast<ssize_t>(sizeof report)) report = {Stage::none, 0};
  Outcome o{std::move(c.job), {c.pid, {}}};
  if (report.stage != Stage::none) {
    // The child failed before exec and is exiting: reap it here, so it is never
    // mistaken for a job's exit or an orphan.
    ::waitpid(c.pid, nullptr, 0);
    o.result.pid = 0;
    const std::string why = fs::errno_text(report.err);
    switch (report.stage) {
      case Stage::none: break;
      case Stage::files:
        o.result.error = "cannot copy the descriptor table: " + why;
        break;
      case Stage::setsid: o.result.error = "cannot create a session: " + why; break;
      case Stage::stdio: o.result.error = "cannot set up stdin/stdout/stderr: " + why; break;
      case Stage::chdir: o.result.error = "cannot chdir to " + c.cwd + ": " + why; break;
      case Stage::groups:
      case Stage::gid:
      case Stage::uid:
        o.result.error = "cannot switch to user " + (c.user.empty() ? "?" : c.user) + ": " + why;
        break;
      case Stage::exec: o.result.error = "cannot exec " + c.path + ": " + why; break;
    }
  }
  done_.push_back(std::move(o));
  spare_.push_back(std::move(child));
}

std::vector<Spawner::Outcome> Spawner::collect() {
  while (!in_flight_.empty()) settle_oldest();
  std::vector<Outcome> out = std::move(done_);
  done_ = {};
  found_in_path_.clear();  // the next batch looks again
  // Keep one child's room (its stack, its plan's vectors) for the next spawn; a big
  // batch's others go back to the system, and so does the heap its plans took.
  if (spare_.size() > 1) {
    spare_.resize(1);
    ::malloc_trim(0);
  }
  return out;
}

}  // namespace vigil
