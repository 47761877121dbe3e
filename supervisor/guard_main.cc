// vigild-guard, the orphan guard (see watchdog.h): a separate, minimal program, so that
// it costs next to nothing while it waits (no C++ runtime, no library but libc: about
// 100 KB of its own memory, against a few MB for a second copy of vigild).
//
// vigild starts it with the read end of a pipe as descriptor 3 and writes ints to it:
// a process group to watch (> 0), one that ended (< 0), or 0, goodbye. At EOF without a
// goodbye, vigild is gone: every group still watched gets SIGKILL, then the guard exits.
#include <errno.h>
#include <signal.h>
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
};

}  // namespace

int main() {
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
  return 0;
}
