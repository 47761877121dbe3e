// Who may answer vigilctl on the control socket. Whoever gets to create the socket's path
// first (in a folder others can write) can listen there, read every request and answer
// it falsely; so vigilctl checks the peer's credentials (SO_PEERCRED) before it sends
// anything, as vigild checks its clients'. Trusted: root, vigilctl's own user, and a
// user named with --server-user or $VIGIL_SERVER_USER (a vigild that runs as a service
// user, reached through socket_group).
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "args.h"

namespace vigil::ctl {

struct ServerTrust {
  uid_t self = 0;                 // vigilctl's effective uid
  std::optional<uid_t> expected;  // the user named with --server-user or $VIGIL_SERVER_USER
};

// The user database, as the functions below need it (tests pass their own).
struct UserLookup {
  std::function<std::optional<uid_t>(const std::string&)> uid_of;
  std::function<std::optional<std::string>(uid_t)> name_of;
};
UserLookup system_users();

// The trust for this run: --server-user, else $VIGIL_SERVER_USER, each a user name or a
// numeric uid. An unknown user is a usage error: the message is returned.
std::variant<ServerTrust, std::string> server_trust(
    const GlobalOptions& options, uid_t self,
    const std::function<std::optional<std::string>(std::string_view)>& getenv,
    const UserLookup& users);

// "" when the daemon listening at `socket`, which runs as `peer`, may be talked to; else
// why not and what to do, for "vigilctl: <this>".
std::string check_server(uid_t peer, const ServerTrust& trust, const std::string& socket,
                         const UserLookup& users);

}  // namespace vigil::ctl
