// Finding a job's processes by their mark, below vigild's own children (see strays.h).
#include "strays.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <deque>
#include <set>

namespace vigil {

namespace {

// The most of a process's environment that is read: far beyond any real one.
constexpr std::size_t kMaxEnviron = 1 << 20;
// The most processes one find() reports: a fork bomb below a job must not make vigild
// walk forever.
constexpr std::size_t kMaxFound = 100000;

// A file of /proc, whole (up to `cap` bytes); empty when it cannot be read.
std::string read_proc(const std::string& path, std::size_t cap) {
  std::string out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[16384];
  while (out.size() < cap) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

struct Stat {
  char state = '?';
  pid_t ppid = 0;
  pid_t pgid = 0;
  unsigned long long start = 0;
};

// /proc/PID/stat: "pid (comm) state ppid pgrp session ... starttime ...". The command
// name may hold spaces and parentheses: the fields start after the last ')'.
std::optional<Stat> read_stat(pid_t pid) {
  const std::string text = read_proc("/proc/" + std::to_string(pid) + "/stat", 4096);
  const auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  Stat st;
  const char* p = text.data() + close + 1;
  const char* end = text.data() + text.size();
  // Field 3 (state) is index 0 here; starttime (field 22) is index 19.
  for (int field = 0; field <= 19 && p < end; ++field) {
    while (p < end && *p == ' ') ++p;
    const char* word = p;
    while (p < end && *p != ' ') ++p;
    if (field == 0) {
      st.state = *word;
    } else if (field == 1) {
      std::from_chars(word, p, st.ppid);
    } else if (field == 2) {
      std::from_chars(word, p, st.pgid);
    } else if (field == 19) {
      if (std::from_chars(word, p, st.start).ec != std::errc{}) return std::nullopt;
      return st;
    }
  }
  return std::nullopt;
}

bool dead(const Stat& st) {
  return st.state == 'Z' || st.state == 'X' || st.state == 'x';
}

void parse_pids(const std::string& text, std::vector<pid_t>& out) {
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    pid_t pid = 0;
    auto r = std::from_chars(p, end, pid);
    if (r.ec == std::errc{} && pid > 0) out.push_back(pid);
    p = r.ptr == p ? p + 1 : r.ptr;
  }
}

// The children of every thread of `pid` (a thread's children are listed under it).
std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = ::opendir(tasks.c_str());
  if (dir == nullptr) return out;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    parse_pids(read_proc(tasks + "/" + e->d_name + "/children", 1 << 20), out);
  }
  ::closedir(dir);
  return out;
}

// vigild's own children. Every one of them is the main thread's: the loop forks on it,
// and orphans are reparented to a subreaper's first live thread. Without the children
// file (a kernel built without CONFIG_PROC_CHILDREN), every process's parent is read.
std::vector<pid_t> own_children() {
  const pid_t self = ::getpid();
  const std::string path = "/proc/self/task/" + std::to_string(self) + "/children";
  std::vector<pid_t> out;
  if (::access(path.c_str(), R_OK) == 0) {
    parse_pids(read_proc(path, 1 << 24), out);
    return out;
  }
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return out;
  while (const dirent* e = ::readdir(dir)) {
    pid_t pid = 0;
    const char* end = e->d_name + std::char_traits<char>::length(e->d_name);
    if (std::from_chars(e->d_name, end, pid).ec != std::errc{}) continue;
    if (auto st = read_stat(pid); st && st->ppid == self) out.push_back(pid);
  }
  ::closedir(dir);
  return out;
}

}  // namespace

std::optional<Mark> parse_mark(std::string_view env, std::string_view daemon_id) {
  std::optional<std::string_view> job, run;
  while (!env.empty()) {
    const auto nul = env.find('\0');
    const std::string_view entry = env.substr(0, nul);
    env = nul == std::string_view::npos ? std::string_view{} : env.substr(nul + 1);
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = entry.substr(0, eq);
    if (name == kJobVariable) job = entry.substr(eq + 1);
    if (name == kRunVariable) run = entry.substr(eq + 1);
  }
  if (!job || !run || job->empty()) return std::nullopt;
  // "<daemon id>-<run>"
  if (run->size() <= daemon_id.size() + 1 || run->substr(0, daemon_id.size()) != daemon_id ||
      (*run)[daemon_id.size()] != '-') {
    return std::nullopt;
  }
  const std::string_view serial = run->substr(daemon_id.size() + 1);
  Mark m;
  auto r = std::from_chars(serial.data(), serial.data() + serial.size(), m.run);
  if (r.ec != std::errc{} || r.ptr != serial.data() + serial.size()) return std::nullopt;
  m.job = std::string(*job);
  return m;
}

std::vector<std::string> mark_entries(std::string_view daemon_id, const std::string& job,
                                      std::uint64_t run) {
  return {std::string(kJobVariable) + "=" + job,
          std::string(kRunVariable) + "=" + std::string(daemon_id) + "-" + std::to_string(run)};
}

std::string new_daemon_id() {
  std::uint64_t bits = 0;
  if (::getrandom(&bits, sizeof bits, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof bits)) {
    // No entropy yet (early boot): the pid and the time make a clash unlikely enough.
    struct timespec ts {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    bits = (static_cast<std::uint64_t>(::getpid()) << 40) ^ static_cast<std::uint64_t>(ts.tv_nsec) ^
           (static_cast<std::uint64_t>(ts.tv_sec) << 20);
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(bits));
  return hex;
}

std::vector<StrayFinder::Found> StrayFinder::find(const std::function<bool(pid_t)>& known) const {
  std::vector<Found> found;
  std::set<pid_t> seen;
  for (pid_t child : own_children()) {
    if (known(child)) continue;
    auto mark =
        parse_mark(read_proc("/proc/" + std::to_string(child) + "/environ", kMaxEnviron), id_);
    if (!mark) continue;  // not a job's, or not this vigild's: not ours to judge
    // The child and everything below it, whatever their own environment says: below a
    // marked process is the same job's.
    std::deque<pid_t> todo{child};
    while (!todo.empty() && found.size() < kMaxFound) {
      const pid_t pid = todo.front();
      todo.pop_front();
      if (!seen.insert(pid).second) continue;
      auto st = read_stat(pid);
      if (!st || dead(*st)) continue;
      found.push_back({pid, st->pgid, st->start, *mark});
      for (pid_t c : children_of(pid)) todo.push_back(c);
    }
  }
  return found;
}

bool StrayFinder::signal(pid_t pid, unsigned long long start, int signo) {
  auto st = read_stat(pid);
  if (!st || dead(*st) || st->start != start) return false;  // gone, or the pid was reused
  return ::kill(pid, signo) == 0;
}

}  // namespace vigil
