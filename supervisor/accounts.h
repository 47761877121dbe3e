// The system's user and group databases, as the daemon needs them: who a job runs as,
// and whether a client of the control socket belongs to socket_group. Reentrant calls
// only (getpwnam_r and friends). A name made of digits is taken as a numeric id.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace vigil::accounts {

struct User {
  uid_t uid = 0;
  gid_t gid = 0;  // primary group
  std::string name;
  std::string home;
  std::string shell;
};

// A user by name or numeric uid. A numeric uid with no passwd entry is still a user
// (uid and gid both that number, home "/", shell /bin/sh), as chown would take it.
std::optional<User> find_user(const std::string& name_or_uid);
std::optional<User> find_user(uid_t uid);
std::optional<gid_t> find_group(const std::string& name_or_gid);
// The groups of a user: its primary group and every group that lists it.
std::vector<gid_t> groups_of(const std::string& user, gid_t primary);
// Whether uid (whose primary group is `primary`) is a member of `group`.
bool member_of(uid_t uid, gid_t primary, gid_t group);

}  // namespace vigil::accounts
