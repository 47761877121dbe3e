// Look-ups in the user database for the programs built on config/ that have none of
// their own (vigilctl): the same reentrant calls the loader uses.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace vigil::config {

// The uid of a user name; std::nullopt when there is no such user.
std::optional<uid_t> user_id(const std::string& name);
// The name of a uid; std::nullopt when the database has none.
std::optional<std::string> user_name(uid_t uid);

}  // namespace vigil::config
