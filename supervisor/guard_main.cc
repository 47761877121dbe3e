// vigild-guard, the orphan guard (see watchdog.h): a separate, minimal program, so that
// it costs next to nothing while it waits (no C++ runtime, no library but libc: about
// 100 KB of its own memory, against a few MB for a second copy of vigild).
//
// vigild starts it with the read end of a pipe as descriptor 3 and writes ints to it:
// a process group to watch (> 0), one that ended (< 0), or 0, goodbye. At EOF without a
// goodbye, vigild is gone: every group still watched gets SIGKILL, then every process
// whose environment carries vigild's mark (its argument: strays.h), and the guard exits.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

namespace {

constexpr int kPipeFd = 3;

// The groups being watched: an unsorted array (a few thousand at most; a lookup happens
// only when a job ends).
struct Groups {
  int* v = nullptr;
  size_t n = 0, cap = 0;

  void add(int g) {
    if (n == cap) {
      size_t next = cap ? cap * 2 : 64;
      void* p = realloc(v, next * sizeof *v);
      if (p == nullptr) return;  // no memory: this group goes unwatched, the rest do not
      v = static_cast<int*>(p);
      cap = next;
    }
    v[n++] = g;
  }
  void remove(int g) {
    for (size_t i = 0; i < n; ++i) {
      if (v[i] == g) {
        v[i] = v[--n];
        return;
      }
    }
  }
  bool has(int g) const {
    for (size_t i = 0; i < n; ++i) {
      if (v[i] == g) return true;
    }
    return false;
  }
};

// Whether the NUL-separated environment in buf[0, len) has an entry starting with `prefix`.
bool has_entry(const char* buf, size_t len, const char* prefix, size_t plen) {
  size_t i = 0;
  while (i < len) {
    const char* entry = buf + i;
    const size_t left = len - i;
    const void* nul = memchr(entry, '\0', left);
    const size_t elen = nul ? static_cast<size_t>(static_cast<const char*>(nul) - entry) : left;
    if (elen >= plen && memcmp(entry, prefix, plen) == 0) return true;
    i += elen + 1;
  }
  return false;
}

// SIGKILL to every process whose environment has an entry starting with `prefix`.
// Returns how many of them were not in `killed` already (and adds them there).
size_t kill_marked(const char* prefix, Groups& killed) {
  static char buf[1 << 20];  // an environment, or its first MiB
  const size_t plen = strlen(prefix);
  const int self = getpid();
  size_t fresh = 0;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return 0;
  while (const dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long pid = strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || pid == self) continue;
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/environ", pid);
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    size_t len = 0;
    for (;;) {
      const ssize_t n = read(fd, buf + len, sizeof buf - len);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      len += static_cast<size_t>(n);
      if (len == sizeof buf) break;
    }
    close(fd);
    if (!has_entry(buf, len, prefix, plen)) continue;
    kill(static_cast<pid_t>(pid), SIGKILL);
    if (!killed.has(static_cast<int>(pid))) {
      killed.add(static_cast<int>(pid));
      ++fresh;
    }
  }
  closedir(dir);
  return fresh;
}

}  // namespace

int main(int argc, char** argv) {
  // Only vigild's death (EOF) or SIGKILL ends the guard: not a signal meant for a whole
  // process group or session.
  const int ignored[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2};
  for (int sig : ignored) signal(sig, SIG_IGN);
  Groups groups;
  int buf[256];
  size_t have = 0;  // bytes in buf
  for (;;) {
    ssize_t n = read(kPipeFd, reinterpret_cast<char*>(buf) + have, sizeof buf - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF (or the pipe broke): vigild is gone without a goodbye
    have += static_cast<size_t>(n);
    const size_t whole = have / sizeof(int);
    for (size_t i = 0; i < whole; ++i) {
      const int value = buf[i];
      if (value == 0) return 0;  // goodbye: a clean exit, nothing to kill
      if (value > 0) {
        groups.add(value);
      } else {
        groups.remove(-value);
      }
    }
    // Keep a partial int for the next read.
    const size_t used = whole * sizeof(int);
    memmove(buf, reinterpret_cast<char*>(buf) + used, have - used);
    have -= used;
  }
  for (size_t i = 0; i < groups.n; ++i) kill(-groups.v[i], SIGKILL);
  if (argc > 1 && argv[1][0] != '\0') {
    // What left its job's group carries the mark. A pass may find what a process forked
    // just before it was killed: again, until a pass finds nothing new (a killed process
    // cannot fork).
    char prefix[128];
    snprintf(prefix, sizeof prefix, "VIGIL_RUN=%s-", argv[1]);
    Groups killed;
    for (int pass = 0; pass < 20 && kill_marked(prefix, killed) > 0; ++pass) {
    }
  }
  return 0;
}
