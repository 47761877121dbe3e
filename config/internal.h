// Helpers shared by the config/ sources but not part of the module's interface: text
// scanning, paths and account look-ups. Nothing outside config/ includes this.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::config::internal {

// The length of the valid UTF-8 sequence that starts at s[i], or 0 when the bytes there
// are not valid UTF-8 (overlong forms, surrogates and truncated sequences included).
std::size_t utf8_length_at(std::string_view s, std::size_t i);

// `text` with control characters and invalid UTF-8 escaped (\n, \t, \r, \xNN), so that it
// cannot break a message into two lines; unlike printable(), quotes and backslashes are
// left alone and nothing is cut. For file names and yaml-cpp's messages.
std::string escape_controls(std::string_view text);

// True when `text` is a decimal number with no sign, such as a numeric uid.
bool all_digits(std::string_view text);

// `path` joined to `base` (unless already absolute), lexically normalized, and without a
// trailing slash (except for "/" itself).
std::string resolve_path(std::string_view base, std::string_view path);

// The folder part of a path as the user wrote it ("" for "vigil.yaml"), lexically.
std::string parent_of(std::string_view path);

// The `name`s of the rows of a table, in order: the names of a table of keys (or values)
// that the table itself dispatches from, for "did you mean" and config::known_keys().
template <typename Table>
std::vector<std::string> names_of(const Table& table) {
  std::vector<std::string> out;
  for (const auto& row : table) out.emplace_back(row.name);
  return out;
}

// System account look-ups (getpwnam_r and friends). std::nullopt: no such account, or the
// database could not be read.
std::optional<uid_t> find_user(const std::string& name);
std::optional<gid_t> find_group(const std::string& name);
// The primary group of a uid, from the passwd database.
std::optional<gid_t> primary_group_of(uid_t uid);
// The home folder of a uid, from the passwd database.
std::optional<std::string> home_of(uid_t uid);
// The name of a uid, from the passwd database.
std::optional<std::string> name_of(uid_t uid);

}  // namespace vigil::config::internal
