// Small filesystem helpers for the files vigild creates: folders made with a given mode,
// files opened without following planted symlinks, and text written atomically.
#pragma once

#include <sys/types.h>

#include <string>

namespace vigil::fs {

// "No such file or directory": strerror, thread-safe.
std::string errno_text(int err);

// Creates `dir` and its missing parents with `mode`. Returns "" or the reason.
std::string make_dirs(const std::string& dir, mode_t mode);

// The folder part of a path ("/a/b/c" -> "/a/b").
std::string dirname(const std::string& path);

// Opens a log file for appending (created with `mode` if missing, its folder with 0750),
// refusing to follow a symlink at the last component. Returns the fd or -errno.
int open_append(const std::string& path, mode_t mode);

}  // namespace vigil::fs
