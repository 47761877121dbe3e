// User and group look-ups for the daemon.
#include "accounts.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace vigil::accounts {

namespace {

std::optional<unsigned long> numeric(const std::string& text) {
  if (text.empty() || !std::all_of(text.begin(), text.end(), ::isdigit)) return std::nullopt;
  return std::strtoul(text.c_str(), nullptr, 10);
}

// Calls a get*_r function with a buffer that grows while it reports ERANGE.
template <typename Entry, typename Call>
std::optional<Entry> lookup(std::vector<char>& buf, Call call) {
  buf.resize(16384);
  for (;;) {
    Entry entry{};
    Entry* result = nullptr;
    const int rc = call(&entry, buf.data(), buf.size(), &result);
    if (rc == ERANGE && buf.size() < (std::size_t{1} << 22)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0 || result == nullptr) return std::nullopt;
    return entry;
  }
}

User to_user(const passwd& pw) {
  return User{pw.pw_uid, pw.pw_gid, pw.pw_name, pw.pw_dir ? pw.pw_dir : "/",
              pw.pw_shell ? pw.pw_shell : "/bin/sh"};
}

}  // namespace

std::optional<User> find_user(uid_t uid) {
  std::vector<char> buf;
  auto pw = lookup<passwd>(buf, [&](passwd* e, char* b, std::size_t n, passwd** r) {
    return ::getpwuid_r(uid, e, b, n, r);
  });
  if (!pw) return std::nullopt;
  return to_user(*pw);
}

std::optional<User> find_user(const std::string& name_or_uid) {
  if (auto id = numeric(name_or_uid)) {
    if (auto u = find_user(static_cast<uid_t>(*id))) return u;
    return User{static_cast<uid_t>(*id), static_cast<gid_t>(*id), name_or_uid, "/", "/bin/sh"};
  }
  std::vector<char> buf;
  auto pw = lookup<passwd>(buf, [&](passwd* e, char* b, std::size_t n, passwd** r) {
    return ::getpwnam_r(name_or_uid.c_str(), e, b, n, r);
  });
  if (!pw) return std::nullopt;
  return to_user(*pw);
}

std::optional<gid_t> find_group(const std::string& name_or_gid) {
  if (auto id = numeric(name_or_gid)) return static_cast<gid_t>(*id);
  std::vector<char> buf;
  auto gr = lookup<group>(buf, [&](group* e, char* b, std::size_t n, group** r) {
    return ::getgrnam_r(name_or_gid.c_str(), e, b, n, r);
  });
  if (!gr) return std::nullopt;
  return gr->gr_gid;
}

std::vector<gid_t> groups_of(const std::string& user, gid_t primary) {
  int n = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  while (::getgrouplist(user.c_str(), primary, groups.data(), &n) < 0) {
    groups.resize(static_cast<std::size_t>(n));
  }
  groups.resize(static_cast<std::size_t>(n));
  return groups;
}

bool member_of(uid_t uid, gid_t primary, gid_t group) {
  if (primary == group) return true;
  auto user = find_user(uid);
  if (!user) return false;
  auto groups = groups_of(user->name, user->gid);
  return std::find(groups.begin(), groups.end(), group) != groups.end();
}

}  // namespace vigil::accounts
