// Parsers for the scalar value types of a vigil config (durations, sizes, octal modes,
// signals, ${VAR} expansion) and the text helpers that quote values inside messages.
#include "values.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <limits>

#include "internal.h"

namespace vigil::config {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_space(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Reads an unsigned decimal number ("12", "1.5", "1.", ".5") at s[i], advancing i past
// it. The value is accumulated by hand rather than with strtod so that the result does
// not depend on the locale's decimal point; a number too long for a long double becomes
// infinity, which the callers report as "too large".
std::optional<long double> read_number(std::string_view s, std::size_t& i, bool* had_fraction) {
  std::size_t j = i;
  long double value = 0;
  bool digits = false;
  while (j < s.size() && is_digit(s[j])) {
    value = value * 10 + (s[j] - '0');
    digits = true;
    ++j;
  }
  bool fraction = false;
  if (j < s.size() && s[j] == '.') {
    std::size_t k = j + 1;
    long double scale = 0.1L;
    while (k < s.size() && is_digit(s[k])) {
      value += (s[k] - '0') * scale;
      scale /= 10;
      fraction = true;
      ++k;
    }
    if (digits || fraction) {
      j = k;
      fraction = true;
      digits = true;
    }
  }
  if (!digits) return std::nullopt;
  if (had_fraction) *had_fraction = fraction;
  i = j;
  return value;
}

void skip_spaces(std::string_view s, std::size_t& i) {
  while (i < s.size() && is_space(s[i])) ++i;
}

// Durations longer than a year are surely mistakes, and the cap keeps every duration
// far from overflowing when code converts it to nanoseconds and adds it to a clock.
constexpr long double kMaxDurationMs = 365.0L * 24 * 3600 * 1000;

ParseError not_a_duration(std::string_view text) {
  return {quote(text) + " is not a duration (expected seconds, or a number with ms, s, m or h)"};
}

struct SignalEntry {
  const char* name;
  int number;
};

// Linux's signal names, without the SIG prefix. Where two names share a number (IOT and
// ABRT, POLL and IO) the first one is the one signal_name() prints.
constexpr std::array kSignals = {
    SignalEntry{"HUP", SIGHUP},       SignalEntry{"INT", SIGINT},   SignalEntry{"QUIT", SIGQUIT},
    SignalEntry{"ILL", SIGILL},       SignalEntry{"TRAP", SIGTRAP}, SignalEntry{"ABRT", SIGABRT},
    SignalEntry{"IOT", SIGIOT},       SignalEntry{"BUS", SIGBUS},   SignalEntry{"FPE", SIGFPE},
    SignalEntry{"KILL", SIGKILL},     SignalEntry{"USR1", SIGUSR1}, SignalEntry{"SEGV", SIGSEGV},
    SignalEntry{"USR2", SIGUSR2},     SignalEntry{"PIPE", SIGPIPE}, SignalEntry{"ALRM", SIGALRM},
    SignalEntry{"TERM", SIGTERM},
#ifdef SIGSTKFLT
    SignalEntry{"STKFLT", SIGSTKFLT},
#endif
    SignalEntry{"CHLD", SIGCHLD},     SignalEntry{"CONT", SIGCONT}, SignalEntry{"STOP", SIGSTOP},
    SignalEntry{"TSTP", SIGTSTP},     SignalEntry{"TTIN", SIGTTIN}, SignalEntry{"TTOU", SIGTTOU},
    SignalEntry{"URG", SIGURG},       SignalEntry{"XCPU", SIGXCPU}, SignalEntry{"XFSZ", SIGXFSZ},
    SignalEntry{"VTALRM", SIGVTALRM}, SignalEntry{"PROF", SIGPROF}, SignalEntry{"WINCH", SIGWINCH},
    SignalEntry{"IO", SIGIO},         SignalEntry{"POLL", SIGPOLL}, SignalEntry{"PWR", SIGPWR},
    SignalEntry{"SYS", SIGSYS},
};

constexpr int kMaxSignal = 64;  // SIGRTMAX on Linux

// Edit distance with adjacent transpositions counted as one edit (optimal string
// alignment), so "stdotu" is one step from "stdout".
std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Three rows of the usual table are enough: the transposition looks two rows back.
  const std::size_t m = b.size();
  std::vector<std::size_t> before(m + 1), previous(m + 1), current(m + 1);
  for (std::size_t j = 0; j <= m; ++j) previous[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        current[j] = std::min(current[j], before[j - 2] + 1);
      }
    }
    std::swap(before, previous);
    std::swap(previous, current);
  }
  return previous[m];
}

bool is_name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

// Defaults may themselves contain ${...}; a bound on the nesting keeps a hostile value
// from recursing without limit.
constexpr int kMaxExpansionDepth = 8;

const char* const kReferenceHelp =
    "(expected ${NAME} or ${NAME:-default}; write $$ for a literal $)";

Parsed<std::string> expand_at(
    std::string_view text, int depth,
    const std::function<std::optional<std::string>(std::string_view)>& lookup) {
  if (depth > kMaxExpansionDepth) {
    return ParseError{"${...} defaults are nested too deeply (at most " +
                      std::to_string(kMaxExpansionDepth) + " levels)"};
  }
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c != '$' || i + 1 >= text.size() || (text[i + 1] != '$' && text[i + 1] != '{')) {
      // A lone "$" (as in a shell's "$HOME") is left for the shell to see.
      out += c;
      ++i;
      continue;
    }
    if (text[i + 1] == '$') {
      out += '$';
      i += 2;
      continue;
    }
    // "${": a name, then "}" or ":-default}".
    const std::size_t start = i;
    std::size_t j = i + 2;
    if (j < text.size() && is_name_start(text[j])) {
      while (j < text.size() && is_name_char(text[j])) ++j;
    }
    const std::string_view name = text.substr(i + 2, j - (i + 2));
    if (j >= text.size()) {
      return ParseError{quote(text.substr(start)) + " is missing its closing } " + kReferenceHelp};
    }
    if (name.empty() || (text[j] != '}' && text.substr(j, 2) != ":-")) {
      const std::size_t close = text.find('}', j);
      const std::size_t end = close == std::string_view::npos ? text.size() : close + 1;
      return ParseError{quote(text.substr(start, end - start)) + " is not a variable reference " +
                        kReferenceHelp};
    }
    const std::optional<std::string> value = lookup ? lookup(name) : std::nullopt;
    if (text[j] == '}') {
      if (!value) {
        return ParseError{"${" + std::string(name) + "} is not set in the environment (write ${" +
                          std::string(name) + ":-default} to give a default)"};
      }
      out += *value;
      i = j + 1;
      continue;
    }
    // ":-": find the "}" that closes this reference, skipping nested ${...} and "$$".
    std::size_t k = j + 2;
    int open = 1;
    while (k < text.size()) {
      if (text[k] == '$' && k + 1 < text.size() && text[k + 1] == '$') {
        k += 2;
      } else if (text[k] == '$' && k + 1 < text.size() && text[k + 1] == '{') {
        ++open;
        k += 2;
      } else if (text[k] == '}') {
        if (--open == 0) break;
        ++k;
      } else {
        ++k;
      }
    }
    if (k >= text.size()) {
      return ParseError{quote(text.substr(start)) + " is missing its closing } " + kReferenceHelp};
    }
    // As in the shell, ":-" also replaces a variable that is set but empty.
    if (value && !value->empty()) {
      out += *value;
    } else {
      Parsed<std::string> fallback = expand_at(text.substr(j + 2, k - (j + 2)), depth + 1, lookup);
      if (auto* error = std::get_if<ParseError>(&fallback)) return *error;
      out += std::get<std::string>(fallback);
    }
    i = k + 1;
  }
  return out;
}

}  // namespace

namespace internal {

std::size_t utf8_length_at(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  std::size_t length;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + length > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

namespace {

// Control characters and invalid UTF-8 as escapes; with `quotes`, '"' and '\\' too (for
// text shown between quotes); cut with "..." after `max_shown` bytes.
std::string escape(std::string_view text, bool quotes, std::size_t max_shown) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (i >= max_shown) {
      out += "...";
      break;
    }
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const std::size_t length = utf8_length_at(text, i);
    if (quotes && (c == '"' || c == '\\')) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f || length == 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out.append(text.substr(i, length));
      i += length;
      continue;
    }
    ++i;
  }
  return out;
}

}  // namespace

std::string escape_controls(std::string_view text) {
  return escape(text, false, std::string_view::npos);
}

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), is_digit);
}

}  // namespace internal

Parsed<Duration> parse_duration(std::string_view text) {
  std::string_view t = trim(text);
  bool negative = false;
  if (!t.empty() && (t.front() == '-' || t.front() == '+')) {
    negative = t.front() == '-';
    t.remove_prefix(1);
  }
  if (t.empty()) return not_a_duration(text);

  // One or more "<number><unit>" parts with units in decreasing order ("1m30s"), or a
  // single plain number of seconds.
  long double total_ms = 0;
  int last_rank = 4;
  std::size_t i = 0;
  while (i < t.size()) {
    std::optional<long double> number = read_number(t, i, nullptr);
    if (!number) return not_a_duration(text);
    skip_spaces(t, i);
    const std::string_view rest = t.substr(i);
    int rank;
    long double unit_ms;
    std::size_t unit_length;
    if (rest.starts_with("ms")) {
      rank = 0, unit_ms = 1, unit_length = 2;
    } else if (rest.starts_with("s")) {
      rank = 1, unit_ms = 1000, unit_length = 1;
    } else if (rest.starts_with("m")) {
      rank = 2, unit_ms = 60 * 1000, unit_length = 1;
    } else if (rest.starts_with("h")) {
      rank = 3, unit_ms = 3600 * 1000, unit_length = 1;
    } else {
      if (last_rank != 4 || !rest.empty()) return not_a_duration(text);
      total_ms = *number * 1000;  // a plain number is seconds
      break;
    }
    if (rank >= last_rank) return not_a_duration(text);
    last_rank = rank;
    total_ms += *number * unit_ms;
    i += unit_length;
    skip_spaces(t, i);
  }
  if (negative) {
    return ParseError{quote(text) + " is negative (expected a duration of zero or more)"};
  }
  if (!std::isfinite(total_ms) || total_ms > kMaxDurationMs) {
    return ParseError{quote(text) + " is too long (expected at most 8760h, a year)"};
  }
  return Duration{std::llround(static_cast<double>(total_ms))};
}

const char* const kSizeUnits = "KiB, MiB, GiB, TiB, PiB or EiB";

Parsed<std::uint64_t> parse_size(std::string_view text) {
  const auto not_a_size = [&] {
    return ParseError{quote(text) + " is not a size (expected bytes, or a number with " +
                      std::string(kSizeUnits) + ")"};
  };
  std::string_view t = trim(text);
  bool negative = false;
  if (!t.empty() && (t.front() == '-' || t.front() == '+')) {
    negative = t.front() == '-';
    t.remove_prefix(1);
  }
  std::size_t i = 0;
  bool fraction = false;
  std::optional<long double> number = read_number(t, i, &fraction);
  if (!number) return not_a_size();
  const std::string_view digits = t.substr(0, i);
  skip_spaces(t, i);
  const std::string unit = lower(t.substr(i));
  std::uint64_t multiplier;
  if (unit.empty() || unit == "b") {
    multiplier = 1;
  } else if (unit == "k" || unit == "kb" || unit == "kib") {
    multiplier = std::uint64_t{1} << 10;
  } else if (unit == "m" || unit == "mb" || unit == "mib") {
    multiplier = std::uint64_t{1} << 20;
  } else if (unit == "g" || unit == "gb" || unit == "gib") {
    multiplier = std::uint64_t{1} << 30;
  } else if (unit == "t" || unit == "tb" || unit == "tib") {
    multiplier = std::uint64_t{1} << 40;
  } else if (unit == "p" || unit == "pb" || unit == "pib") {
    multiplier = std::uint64_t{1} << 50;
  } else if (unit == "e" || unit == "eb" || unit == "eib") {
    multiplier = std::uint64_t{1} << 60;
  } else {
    return not_a_size();
  }
  // A fraction of a byte means nothing; "1.5MiB" is fine.
  if (fraction && multiplier == 1) return not_a_size();
  if (negative) return ParseError{quote(text) + " is negative (expected a size of zero or more)"};

  // 16 EiB itself is one byte too many for 64 bits.
  const ParseError too_large{quote(text) + " is too large (expected less than 16 EiB)"};
  if (!fraction) {
    // Whole numbers are computed exactly: a long double cannot hold every 64-bit value.
    std::uint64_t value = 0;
    for (char c : digits) {
      const auto d = static_cast<std::uint64_t>(c - '0');
      if (value > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return too_large;
      value = value * 10 + d;
    }
    if (value > std::numeric_limits<std::uint64_t>::max() / multiplier) return too_large;
    return value * multiplier;
  }
  const long double bytes = std::floor(*number * static_cast<long double>(multiplier));
  if (!std::isfinite(bytes) || bytes >= 18446744073709551616.0L) return too_large;
  return static_cast<std::uint64_t>(bytes);
}

Parsed<mode_t> parse_mode(std::string_view text) {
  std::string_view t = trim(text);
  // YAML 1.2 writes octal as 0o750; accept it as well as the traditional 0750.
  if (t.starts_with("0o") || t.starts_with("0O")) t.remove_prefix(2);
  if (t.empty()) return ParseError{quote(text) + " is not an octal mode"};
  unsigned value = 0;
  bool too_large = false;
  for (char c : t) {
    if (c < '0' || c > '7') return ParseError{quote(text) + " is not an octal mode"};
    value = value * 8 + static_cast<unsigned>(c - '0');
    if (value > 0777) {
      too_large = true;
      value = 0;  // keep scanning for bad digits without overflowing
    }
  }
  if (too_large) {
    return ParseError{quote(text) + " is out of range (expected an octal mode of at most 0777)"};
  }
  return static_cast<mode_t>(value);
}

Parsed<int> parse_signal(std::string_view text) {
  const std::string_view t = trim(text);
  if (internal::all_digits(t)) {
    int number = 0;
    for (char c : t) {
      number = number * 10 + (c - '0');
      if (number > kMaxSignal) break;
    }
    if (number < 1 || number > kMaxSignal) {
      return ParseError{quote(text) + " is not a signal number (expected 1 to 64)"};
    }
    return number;
  }
  std::string name = upper(t);
  if (name.starts_with("SIG")) name.erase(0, 3);
  for (const SignalEntry& entry : kSignals) {
    if (name == entry.name) return entry.number;
  }
  std::vector<std::string> names;
  for (const SignalEntry& entry : kSignals) names.emplace_back(entry.name);
  if (!name.empty()) {
    if (std::optional<std::string> suggestion = did_you_mean(name, names)) {
      return ParseError{quote(text) + " is not a signal (did you mean \"" + *suggestion + "\"?)"};
    }
  }
  return ParseError{quote(text) +
                    " is not a signal (expected a name such as TERM, INT or HUP, or a number from "
                    "1 to 64)"};
}

std::string signal_name(int signo) {
  for (const SignalEntry& entry : kSignals) {
    if (entry.number == signo) return entry.name;
  }
  return std::to_string(signo);
}

Parsed<std::string> expand(
    std::string_view text,
    const std::function<std::optional<std::string>(std::string_view)>& lookup) {
  return expand_at(text, 0, lookup);
}

std::optional<std::string> did_you_mean(std::string_view word,
                                        const std::vector<std::string>& candidates) {
  // Case is ignored, so "Command" suggests "command". A third of the word's length is
  // about where a guess stops looking like a typo and starts looking like a different
  // word; at least one edit is always allowed so short words get suggestions too.
  // Keys and names are short; a long word (a whole scalar pasted as a key) is no typo,
  // and skipping it keeps the quadratic distance cheap.
  constexpr std::size_t kLongest = 128;
  if (word.size() > kLongest) return std::nullopt;
  const std::string needle = lower(word);
  const std::size_t limit = std::max<std::size_t>(1, needle.size() / 3);
  std::optional<std::string> best;
  std::size_t best_distance = limit + 1;
  for (const std::string& candidate : candidates) {
    const std::size_t gap = candidate.size() > needle.size() ? candidate.size() - needle.size()
                                                             : needle.size() - candidate.size();
    if (gap > limit) continue;  // the distance is at least the difference in length
    const std::size_t distance = edit_distance(needle, lower(candidate));
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  return best;
}

std::string format_duration(Duration d) {
  long long ms = d.count();
  if (ms < 0) return "-" + format_duration(Duration{-ms});
  if (ms < 1000) return std::to_string(ms) + "ms";
  const long long hours = ms / 3600000;
  ms %= 3600000;
  const long long minutes = ms / 60000;
  ms %= 60000;
  std::string out;
  if (hours) out += std::to_string(hours) + "h";
  if (minutes) out += std::to_string(minutes) + "m";
  if (ms) {
    out += std::to_string(ms / 1000);
    if (ms % 1000) {
      char fraction[8];
      std::snprintf(fraction, sizeof fraction, ".%03lld", ms % 1000);
      std::string f = fraction;
      while (f.back() == '0') f.pop_back();
      out += f;
    }
    out += "s";
  }
  return out;
}

std::string printable(std::string_view text) {
  // Long enough for any valid key or job name, short enough for one line.
  return internal::escape(text, true, 80);
}

std::string quote(std::string_view text) {
  return "\"" + printable(text) + "\"";
}

}  // namespace vigil::config
