// Parsers for the scalar value types of a vigil config: durations, sizes, octal modes,
// signal names, ${VAR} expansion. Pure functions; each failure is a message saying what
// was expected, which the loader prefixes with file:line:col and the key's path.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <vector>

#include "spec.h"

namespace vigil::config {

// Why a value could not be parsed: what was expected, in words.
struct ParseError {
  std::string message;
};

// Either a value or the reason it could not be parsed.
template <typename T>
using Parsed = std::variant<T, ParseError>;

// "250ms", "10s", "2m", "1h", "1.5s", or a plain number of seconds ("3", "0.25").
Parsed<Duration> parse_duration(std::string_view text);

// "1024", "10KiB", "10MiB", "1GiB", up to EiB (also "K"/"M"/.../"E" and "KB"/"MB"/.../"EB"
// as powers of 1024).
Parsed<std::uint64_t> parse_size(std::string_view text);

// The units parse_size() accepts, as its messages list them: "KiB, MiB, ... or EiB".
extern const char* const kSizeUnits;

// An octal mode string such as "0022" or "750"; at most 0777.
Parsed<mode_t> parse_mode(std::string_view text);

// "TERM", "SIGTERM", "term", or a number 1..64. Returns the signal number.
Parsed<int> parse_signal(std::string_view text);

// The short name of a signal ("TERM"), or the number as text when it has none.
std::string signal_name(int signo);

// Expands ${VAR} and ${VAR:-default} using `lookup`. "$$" is a literal "$". An unset
// variable without a default is an error naming it.
Parsed<std::string> expand(
    std::string_view text,
    const std::function<std::optional<std::string>(std::string_view)>& lookup);

// The closest candidate to `word` by edit distance, if one is close enough to suggest.
std::optional<std::string> did_you_mean(std::string_view word,
                                        const std::vector<std::string>& candidates);

// Formats a duration for people: "250ms", "10s", "1m30s". parse_duration accepts the result.
std::string format_duration(Duration d);

// Text as it should appear inside a message: in double quotes, with quotes, backslashes,
// control characters and invalid UTF-8 escaped (\", \\, \n, \xNN), and cut to a readable
// length, so a config with binary junk or a 4 MiB scalar still yields a one-line message.
std::string quote(std::string_view text);

// Like quote() without the surrounding quotes: for a key inside a key path.
std::string printable(std::string_view text);

}  // namespace vigil::config
