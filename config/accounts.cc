// Look-ups in the system's user and group databases, through the reentrant NSS calls so
// that the loader is safe to run on any thread of the daemon.
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "internal.h"
#include "users.h"

namespace vigil::config::internal {
namespace {

// Calls one of the get*_r functions with a buffer that grows while it reports ERANGE.
// `call` copies what it needs out of the entry: its strings live in the buffer.
template <typename Entry, typename Call>
void lookup(Call call) {
  long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buffer(hint > 0 ? static_cast<std::size_t>(hint) : 4096);
  for (;;) {
    Entry entry{};
    Entry* result = nullptr;
    const int rc = call(&entry, buffer.data(), buffer.size(), &result);
    if (rc == ERANGE && buffer.size() < (std::size_t{1} << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    return;
  }
}

}  // namespace

std::optional<uid_t> find_user(const std::string& name) {
  std::optional<uid_t> uid;
  lookup<passwd>([&](passwd* entry, char* buf, std::size_t size, passwd** result) {
    const int rc = getpwnam_r(name.c_str(), entry, buf, size, result);
    if (rc == 0 && *result) uid = (*result)->pw_uid;
    return rc;
  });
  return uid;
}

std::optional<gid_t> find_group(const std::string& name) {
  std::optional<gid_t> gid;
  lookup<group>([&](group* entry, char* buf, std::size_t size, group** result) {
    const int rc = getgrnam_r(name.c_str(), entry, buf, size, result);
    if (rc == 0 && *result) gid = (*result)->gr_gid;
    return rc;
  });
  return gid;
}

std::optional<gid_t> primary_group_of(uid_t uid) {
  std::optional<gid_t> gid;
  lookup<passwd>([&](passwd* entry, char* buf, std::size_t size, passwd** result) {
    const int rc = getpwuid_r(uid, entry, buf, size, result);
    if (rc == 0 && *result) gid = (*result)->pw_gid;
    return rc;
  });
  return gid;
}

std::optional<std::string> home_of(uid_t uid) {
  std::optional<std::string> home;
  lookup<passwd>([&](passwd* entry, char* buf, std::size_t size, passwd** result) {
    const int rc = getpwuid_r(uid, entry, buf, size, result);
    if (rc == 0 && *result && (*result)->pw_dir) home = (*result)->pw_dir;
    return rc;
  });
  return home;
}

std::optional<std::string> name_of(uid_t uid) {
  std::optional<std::string> name;
  lookup<passwd>([&](passwd* entry, char* buf, std::size_t size, passwd** result) {
    const int rc = getpwuid_r(uid, entry, buf, size, result);
    if (rc == 0 && *result && (*result)->pw_name) name = (*result)->pw_name;
    return rc;
  });
  return name;
}

}  // namespace vigil::config::internal

namespace vigil::config {

std::optional<uid_t> user_id(const std::string& name) {
  return internal::find_user(name);
}

std::optional<std::string> user_name(uid_t uid) {
  return internal::name_of(uid);
}

}  // namespace vigil::config
