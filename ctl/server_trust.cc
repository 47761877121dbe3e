// The check of who answers on the control socket (server_trust.h).
#include "server_trust.h"

#include <algorithm>
#include <limits>

#include "users.h"

namespace vigil::ctl {

namespace {

std::string who(uid_t uid, const UserLookup& users) {
  std::string out = "uid " + std::to_string(uid);
  if (const auto name = users.name_of(uid)) out += " (" + *name + ")";
  return out;
}

// A user name, or a uid written as a number (which need not be in the database: a
// container may run vigild as a uid that has no name here).
std::optional<uid_t> parse_user(const std::string& text, const UserLookup& users) {
  if (!text.empty() &&
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (text.size() > 10) return std::nullopt;
    const unsigned long long n = std::stoull(text);
    // (uid_t)-1 means "no uid" to the kernel.
    if (n >= std::numeric_limits<uid_t>::max()) return std::nullopt;
    return static_cast<uid_t>(n);
  }
  return users.uid_of(text);
}

}  // namespace

UserLookup system_users() {
  return {config::user_id, config::user_name};
}

std::variant<ServerTrust, std::string> server_trust(
    const GlobalOptions& options, uid_t self,
    const std::function<std::optional<std::string>(std::string_view)>& getenv,
    const UserLookup& users) {
  ServerTrust trust;
  trust.self = self;
  std::string named;
  std::string where;
  if (options.server_user) {
    named = *options.server_user;
    where = "--server-user";
  } else if (const auto value = getenv("VIGIL_SERVER_USER")) {
    named = *value;
    where = "$VIGIL_SERVER_USER";
  }
  if (named.empty()) return trust;
  trust.expected = parse_user(named, users);
  if (!trust.expected) {
    return where + ": no user named '" + named + "' (expected a user name or a uid)";
  }
  return trust;
}

std::string check_server(uid_t peer, const ServerTrust& trust, const std::string& socket,
                         const UserLookup& users) {
  if (peer == 0 || peer == trust.self || peer == trust.expected) return {};
  std::string trusted = "root and you (" + who(trust.self, users) + ")";
  if (trust.expected) trusted = "root, you and " + who(*trust.expected, users);
  const std::optional<std::string> name = users.name_of(peer);
  const std::string as = name ? *name : std::to_string(peer);
  const std::string hint = "if vigild runs as that user, say so with --server-user " + as +
                           " or VIGIL_SERVER_USER=" + as;
  return "refusing to talk to " + socket + ": it is served by " + who(peer, users) +
         ", and vigilctl trusts only " + trusted +
         " (another user may be answering in vigild's place); " + hint;
}

}  // namespace vigil::ctl
