// The runtime directory of a user other than root: where vigild puts its socket and
// pidfile by default ($XDG_RUNTIME_DIR, else /tmp/vigil-UID), and the check that it is
// the user's own. A folder in /tmp can be made by anyone first; whoever owns it, or may
// write in it, can move vigild's socket aside and answer vigilctl in vigild's place.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "loader.h"

namespace vigil::config {

// The runtime directory of env.uid; std::nullopt for root, whose /run/vigil only root
// can create.
std::optional<std::string> runtime_dir(const Environment& env);

// "" when `dir` may hold the socket and pidfile of `uid`: a directory itself (not a
// symbolic link), owned by `uid`, and writable by no other user. Otherwise why not,
// naming the directory, what is wrong with it and what to do. With `create`, a missing
// directory is first made with exactly that mode (never through a symbolic link);
// without, a missing one is fine (there is nothing there to distrust).
std::string check_private_dir(const std::string& dir, uid_t uid,
                              std::optional<mode_t> create = std::nullopt);

// For vigild before it creates anything: check_private_dir() of the runtime directory
// (created if missing) when the socket, pidfile or logs of `spec` lie in it; "" for
// root and for paths elsewhere. The directory is made 0700, or 0711 when socket_group
// must reach a socket in it.
std::string prepare_runtime_dir(const SupervisorSpec& spec, const Environment& env);

// For vigilctl: check_private_dir() of the runtime directory when `socket` lies in it.
std::string check_runtime_socket(const std::string& socket, const Environment& env);

}  // namespace vigil::config
