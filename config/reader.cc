// Typed, diagnosing access to YAML nodes. Values are read only through Scalar() and
// iteration, never through yaml-cpp's as<T>() conversions, so nothing here throws for a
// value of the wrong shape: it becomes a message saying what was expected instead.
#include "reader.h"

#include <charconv>
#include <cmath>
#include <map>

#include "internal.h"
#include "values.h"

namespace vigil::config::internal {
namespace {

// "file:line:col", as in a message's prefix, for "first at ..." references.
std::string location_text(const Location& at) {
  std::string out = at.file;
  if (at.line > 0) out += ":" + std::to_string(at.line) + ":" + std::to_string(at.column);
  return out;
}

template <typename T>
std::optional<T> report(Reader& reader, const Entry& entry, Parsed<T> parsed) {
  if (auto* error = std::get_if<ParseError>(&parsed)) {
    reader.error(reader.value_at(entry), entry.path, error->message);
    return std::nullopt;
  }
  return std::get<T>(std::move(parsed));
}

}  // namespace

std::string join_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return printable(key);
  return std::string(parent) + "." + printable(key);
}

Reader::Reader(const Source& source, std::string base_dir, const Environment& env,
               std::vector<Diagnostic>& errors)
    : source_(source), base_dir_(std::move(base_dir)), env_(env), errors_(errors) {}

void Reader::error(const Location& at, std::string_view path, std::string_view message) {
  std::string text;
  if (!path.empty()) text = std::string(path) + ": ";
  text += message;
  errors_.push_back({at, std::move(text)});
}

void Reader::expected(const Entry& entry, std::string_view what) {
  error(value_at(entry), entry.path, "expected " + std::string(what) + ", got " + describe(entry));
}

Location Reader::value_at(const Entry& entry) const {
  if (entry.value.IsNull() && !source_.explicit_null(entry.value) && entry.key.IsDefined() &&
      !entry.key.Mark().is_null()) {
    return source_.where(entry.key);
  }
  return source_.where(entry.value);
}

std::string Reader::describe(const Entry& entry) const {
  switch (entry.value.Type()) {
    case YAML::NodeType::Sequence:
      return entry.value.size() == 0 ? "an empty list" : "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return quote(entry.value.Scalar());
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return source_.explicit_null(entry.value) ? "null" : "nothing";
}

std::vector<Entry> Reader::entries(const Entry& parent, std::string_view what, bool repeats_ok) {
  if (!parent.value.IsMap() && !parent.value.IsNull()) {
    expected(parent, what);
    return {};
  }
  return entries(parent.value, parent.path, what, repeats_ok);
}

std::vector<Entry> Reader::entries(const YAML::Node& node, std::string_view path,
                                   std::string_view what, bool repeats_ok) {
  std::vector<Entry> out;
  if (node.IsNull()) return out;
  if (!node.IsMap()) {
    expected(Entry{"", std::string(path), YAML::Node(), node}, what);
    return out;
  }
  std::map<std::string, Location> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    Entry entry{"", "", it->first, it->second};
    if (!it->first.IsScalar()) {
      Entry as_value{"", std::string(path), YAML::Node(), it->first};
      error(source_.where(it->first), path, "expected a key name, got " + describe(as_value));
      continue;
    }
    entry.name = it->first.Scalar();
    entry.path = join_path(path, entry.name);
    const Location at = source_.where(it->first);
    if (!repeats_ok) {
      auto [first, inserted] = seen.emplace(entry.name, at);
      if (!inserted) {
        error(at, entry.path, "defined twice (first at " + location_text(first->second) + ")");
        continue;
      }
    }
    out.push_back(std::move(entry));
  }
  return out;
}

std::vector<Entry> Reader::elements(const Entry& parent) const {
  std::vector<Entry> out;
  std::size_t index = 0;
  for (auto it = parent.value.begin(); it != parent.value.end(); ++it, ++index) {
    out.push_back({"", parent.path + "[" + std::to_string(index) + "]", YAML::Node(), *it});
  }
  return out;
}

void Reader::unknown_key(const Entry& entry, std::string_view path,
                         const std::vector<std::string>& known) {
  std::string message = "unknown key " + quote(entry.name);
  if (std::optional<std::string> suggestion = did_you_mean(entry.name, known)) {
    message += " (did you mean \"" + *suggestion + "\"?)";
  }
  error(key_at(entry), path, message);
}

std::optional<std::string> Reader::scalar(const Entry& entry, std::string_view what) {
  if (!entry.value.IsScalar()) {
    expected(entry, what);
    return std::nullopt;
  }
  return entry.value.Scalar();
}

std::optional<bool> Reader::boolean(const Entry& entry) {
  if (entry.value.IsScalar()) {
    // YAML 1.2's spellings only: yes/no/on/off are YAML 1.1 traps ("no" as a country code).
    const std::string& text = entry.value.Scalar();
    if (text == "true" || text == "True" || text == "TRUE") return true;
    if (text == "false" || text == "False" || text == "FALSE") return false;
  }
  expected(entry, "true or false");
  return std::nullopt;
}

std::optional<long long> Reader::integer(const Entry& entry, long long min, long long max,
                                         std::string_view what) {
  if (entry.value.IsScalar()) {
    std::string_view text = entry.value.Scalar();
    if (text.starts_with('+')) text.remove_prefix(1);
    long long value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc() && end == text.data() + text.size() && !text.empty() && value >= min &&
        value <= max) {
      return value;
    }
  }
  expected(entry, what);
  return std::nullopt;
}

std::optional<Duration> Reader::duration(const Entry& entry) {
  if (!entry.value.IsScalar()) {
    expected(entry, "a duration (seconds, or a number with ms, s, m or h)");
    return std::nullopt;
  }
  return report(*this, entry, parse_duration(entry.value.Scalar()));
}

std::optional<std::uint64_t> Reader::size(const Entry& entry) {
  if (!entry.value.IsScalar()) {
    expected(entry, "a size (bytes, or a number with " + std::string(kSizeUnits) + ")");
    return std::nullopt;
  }
  return report(*this, entry, parse_size(entry.value.Scalar()));
}

std::optional<mode_t> Reader::mode(const Entry& entry) {
  if (!entry.value.IsScalar()) {
    expected(entry, "an octal mode such as \"0022\"");
    return std::nullopt;
  }
  return report(*this, entry, parse_mode(entry.value.Scalar()));
}

std::optional<int> Reader::signal(const Entry& entry) {
  if (!entry.value.IsScalar()) {
    expected(entry, "a signal name or number");
    return std::nullopt;
  }
  return report(*this, entry, parse_signal(entry.value.Scalar()));
}

std::optional<std::string> Reader::expanded(const Entry& entry, std::string_view what) {
  std::optional<std::string> raw = scalar(entry, what);
  if (!raw) return std::nullopt;
  std::optional<std::string> value = report(*this, entry, expand(*raw, env_.getenv));
  if (value && value->find('\0') != std::string::npos) {
    error(value_at(entry), entry.path,
          quote(*value) + " contains a NUL character (expected " + std::string(what) +
              " without one)");
    return std::nullopt;
  }
  return value;
}

std::optional<std::string> Reader::path(const Entry& entry) {
  std::optional<std::string> value = expanded(entry, "a path");
  if (!value) return std::nullopt;
  if (value->empty()) {
    if (entry.value.Scalar().empty()) {
      expected(entry, "a path");
    } else {
      error(value_at(entry), entry.path,
            quote(entry.value.Scalar()) + " expands to an empty string (expected a path)");
    }
    return std::nullopt;
  }
  return resolve_path(base_dir_, *value);
}

}  // namespace vigil::config::internal
