// Typed, diagnosing access to YAML nodes. Values are read only through Scalar() and
// iteration, never through yaml-cpp's as<T>() conversions, so nothing here throws for a
// value of the wrong shape: it becomes a message saying what was expected instead.
#include "reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>

#include "internal.h"
#include "values.h"

namespace vigil::config::internal {
namespace {

// Merges within merged mappings, at most: enough for defaults built on defaults, and a
// bound on the recursion whatever the aliases in a file point at.
constexpr int kMaxMergeDepth = 16;
// Entries that merges may bring into one file (see Reader::merge_budget_): a hundred for
// each of 10000 jobs.
constexpr std::size_t kMaxMergedEntries = 1'000'000;

// `<<` as a plain key (or tagged !!merge) is YAML's merge key; a quoted "<<" is a name.
bool is_merge_key(const YAML::Node& key) {
  return key.IsScalar() && key.Scalar() == "<<" &&
         (key.Tag() == "?" || key.Tag() == "tag:yaml.org,2002:merge");
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
    : source_(source),
      base_dir_(std::move(base_dir)),
      env_(env),
      errors_(errors),
      merge_budget_(kMaxMergedEntries) {}

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
  merging_.assign(1, node);
  collect(node, path, repeats_ok, 0, out);
  merging_.clear();
  return out;
}

void Reader::collect(const YAML::Node& node, std::string_view path, bool repeats_ok, int depth,
                     std::vector<Entry>& out) {
  // The mapping's own keys first, so that they are known before any merge is resolved:
  // they win over merged ones wherever the `<<` is written.
  std::vector<Entry> own;
  std::vector<std::pair<YAML::Node, YAML::Node>> merges;
  std::vector<bool> is_merge;  // of each key in file order
  // Marks, not Locations: a Location costs a scan of its line, which only an error needs.
  std::map<std::string, YAML::Mark> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (is_merge_key(it->first)) {
      if (!merges.empty()) {
        error(source_.where(it->first), join_path(path, "<<"),
              "defined twice (first at " + source_.where(merges.front().first).str() +
                  "; to merge several mappings write <<: [*a, *b])");
        continue;
      }
      merges.emplace_back(it->first, it->second);
      is_merge.push_back(true);
      continue;
    }
    Entry entry{"", "", it->first, it->second};
    if (!it->first.IsScalar()) {
      Entry as_value{"", std::string(path), YAML::Node(), it->first};
      error(source_.where(it->first), path, "expected a key name, got " + describe(as_value));
      continue;
    }
    entry.name = it->first.Scalar();
    entry.path = join_path(path, entry.name);
    if (!repeats_ok) {
      auto [first, inserted] = seen.emplace(entry.name, it->first.Mark());
      if (!inserted) {
        error(source_.where(it->first), entry.path,
              "defined twice (first at " + source_.where(first->second).str() + ")");
        continue;
      }
    }
    own.push_back(std::move(entry));
    is_merge.push_back(false);
  }
  if (merges.empty()) {
    for (Entry& entry : own) out.push_back(std::move(entry));
    return;
  }
  std::set<std::string> taken;
  for (const Entry& entry : own) taken.insert(entry.name);
  std::size_t next_own = 0;
  for (bool merge : is_merge) {
    if (!merge) {
      out.push_back(std::move(own[next_own++]));
      continue;
    }
    for (Entry& entry : merged(merges.front().first, merges.front().second, path, depth)) {
      if (taken.insert(entry.name).second) out.push_back(std::move(entry));
    }
  }
}

std::vector<Entry> Reader::merged(const YAML::Node& merge, const YAML::Node& value,
                                  std::string_view path, int depth) {
  // Spent: reported once already, where it ran out.
  if (merge_budget_spent_) return {};
  const std::string merge_path = join_path(path, "<<");
  // Each mapping listed costs one, so that long lists of empty mappings are bounded too.
  const auto spend = [&](std::size_t n) {
    if (merge_budget_ >= n) {
      merge_budget_ -= n;
      return true;
    }
    merge_budget_spent_ = true;
    error(source_.where(merge), merge_path,
          "merges bring in too many keys (expected at most " + std::to_string(kMaxMergedEntries) +
              " in one file)");
    return false;
  };
  std::vector<YAML::Node> sources;
  if (value.IsMap()) {
    sources.push_back(value);
  } else if (value.IsSequence() && value.size() > 0) {
    std::size_t index = 0;
    for (auto it = value.begin(); it != value.end(); ++it, ++index) {
      if (!it->IsMap()) {
        expected(Entry{"", merge_path + "[" + std::to_string(index) + "]", YAML::Node(), *it},
                 "a mapping to merge, such as *defaults");
        return {};
      }
      sources.push_back(*it);
    }
  } else {
    expected(Entry{"<<", merge_path, merge, value},
             "a mapping to merge (<<: *defaults) or a list of them");
    return {};
  }
  if (depth >= kMaxMergeDepth) {
    error(source_.where(merge), merge_path,
          "merges nested too deeply (expected at most " + std::to_string(kMaxMergeDepth) +
              " levels of mappings merged into mappings)");
    return {};
  }
  if (!spend(sources.size())) return {};
  // Earlier mappings win over later ones: collected in order, the first of each name
  // is kept.
  std::vector<Entry> out;
  std::set<std::string> taken;
  for (const YAML::Node& source : sources) {
    if (std::any_of(merging_.begin(), merging_.end(),
                    [&](const YAML::Node& n) { return n.is(source); })) {
      error(source_.where(merge), merge_path,
            "merges a mapping into itself (through its own anchor)");
      continue;
    }
    std::vector<Entry> entries;
    merging_.push_back(source);
    collect(source, path, false, depth + 1, entries);
    merging_.pop_back();
    // Every entry counts, those that a nearer key shadows too: the work was done.
    if (merge_budget_spent_ || !spend(entries.size())) return {};
    for (Entry& entry : entries) {
      if (taken.insert(entry.name).second) out.push_back(std::move(entry));
    }
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
