// JSON text written straight into a string, for answers too large to build as a json tree
// first (`status` of 1000 jobs). Every function writes exactly the bytes nlohmann's
// dump(-1, ' ', false, error_handler_t::replace) writes for the same value, so a line
// written this way is the same line either way (tests/unit/protocol_json_test.cc).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace vigil::protocol {

// A quoted, escaped string: '"', '\\' and control characters escaped (\n, \u001b, ...),
// invalid UTF-8 replaced by U+FFFD.
void append_json_string(std::string& out, std::string_view s);
// A number as nlohmann writes a double: the shortest text that reads back the same, with
// ".0" when it looks like an integer ("3.0"); null when not finite.
void append_json_number(std::string& out, double value);
void append_json_integer(std::string& out, std::int64_t value);

}  // namespace vigil::protocol
