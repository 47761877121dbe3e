// Small filesystem helpers for the files vigild creates: folders made with a given mode,
// files opened without following planted symlinks, and text written atomically.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstddef>
#include <string>

namespace vigil::fs {

// "No such file or directory": strerror, thread-safe.
std::string errno_text(int err);

// Creates `dir` and its missing parents with `mode`. Returns "" or the reason, naming the
// folder asked for and the one in the way: "cannot create /x/y: /x is not a directory".
std::string make_dirs(const std::string& dir, mode_t mode);

// The folder part of a path ("/a/b/c" -> "/a/b").
std::string dirname(const std::string& path);

// True when the last component of `path` is a symbolic link (for messages, after an
// open with O_NOFOLLOW failed with ELOOP).
bool is_symlink(const std::string& path);

// Opens a log file for appending (created with `mode` if missing, its folder with 0750),
// refusing to follow a symlink at the last component. Returns the fd or -errno; on
// failure `why` (when given) is the reason in words, with the path in it.
int open_append(const std::string& path, mode_t mode, std::string* why = nullptr);

// Where vigild keeps the descriptors it holds for as long as a job lives (the read ends
// of job pipes, job log files): at or above a base far from the low numbers, so that the
// low ones stay few. A new job process starts with a copy of only the low part of
// vigild's descriptor table (see spawner.cc), which is then a few dozen entries however
// many jobs there are. `limit` is vigild's RLIMIT_NOFILE; with a small one there is no
// room apart, and descriptors stay where they are.
void set_long_lived_fd_base(rlim_t limit);
// Moves `fd` (close-on-exec) to the long-lived range and returns its new number; `fd`
// itself if there is no room there (it is then left as it was, and still valid).
int keep_long_lived(int fd);
// Grows the descriptor table at once to hold `count` long-lived descriptors. Call it
// while the process has a single thread: the kernel grows a table that threads share
// only after an RCU grace period (15 ms on this VM), which would otherwise be spent on
// the way to the first job, and again at every doubling while jobs start.
void reserve_long_lived(std::size_t count);

}  // namespace vigil::fs
