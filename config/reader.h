// Typed access to the nodes of one parsed config file, reporting every problem as a
// "file:line:col: key.path: what was expected" diagnostic. Internal to config/.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "loader.h"
#include "source.h"
#include "spec.h"

namespace vigil::config::internal {

// "jobs" + "web" -> "jobs.web"; the key is made printable.
std::string join_path(std::string_view parent, std::string_view key);

// One key of a mapping, or one element of a list (then `key` is an empty node), with the
// key path that names its value in messages.
struct Entry {
  std::string name;
  std::string path;
  YAML::Node key;
  YAML::Node value;
};

class Reader {
 public:
  // `base_dir` is the absolute folder of the file, against which relative paths resolve.
  Reader(const Source& source, std::string base_dir, const Environment& env,
         std::vector<Diagnostic>& errors);

  const Source& source() const { return source_; }
  const std::string& base_dir() const { return base_dir_; }
  const Environment& env() const { return env_; }

  // Adds "path: message" at `at` (just "message" when the path is empty).
  void error(const Location& at, std::string_view path, std::string_view message);
  // Adds "path: expected <expected>, got <what the value is>" at the value.
  void expected(const Entry& entry, std::string_view expected);

  Location key_at(const Entry& entry) const { return source_.where(entry.key); }
  // The value's position; for a value left empty, the key's (an empty value has no
  // position of its own: yaml-cpp marks the next token).
  Location value_at(const Entry& entry) const;
  // What a value is, for "got ...": "a list", "a mapping", "null", "nothing" or the
  // quoted text of a scalar.
  std::string describe(const Entry& entry) const;

  // The keys of a mapping in file order. Null (`jobs:` with nothing under it) counts as
  // an empty mapping. Reports a value that is not a mapping ("expected <what>"), keys
  // that are not plain names, and repeated keys (unless `repeats_ok`: the caller
  // reports those itself).
  //
  // YAML merge keys are resolved here, for every mapping alike: `<<: *defaults` (or a
  // list of them) brings in the keys of the merged mappings, at the place of the `<<`,
  // except those the mapping sets itself; of a list, an earlier mapping wins over a later
  // one. The entries brought in keep their own position (in the anchored mapping) and
  // take the key path of the mapping they are merged into.
  std::vector<Entry> entries(const Entry& parent, std::string_view what = "a mapping",
                             bool repeats_ok = false);
  // The same for a node that is not the value of a key (the top level of a file).
  std::vector<Entry> entries(const YAML::Node& node, std::string_view path, std::string_view what,
                             bool repeats_ok = false);
  // The elements of a list value, each with path "parent[i]".
  std::vector<Entry> elements(const Entry& parent) const;

  // Reports `entry` as an unknown key of the mapping at `path`, with a suggestion from
  // `known` when one is close.
  void unknown_key(const Entry& entry, std::string_view path,
                   const std::vector<std::string>& known);

  // Typed values. Each reports its own problem and returns std::nullopt on failure.
  std::optional<std::string> scalar(const Entry& entry, std::string_view what);
  std::optional<bool> boolean(const Entry& entry);
  std::optional<long long> integer(const Entry& entry, long long min, long long max,
                                   std::string_view what);
  std::optional<Duration> duration(const Entry& entry);
  std::optional<std::uint64_t> size(const Entry& entry);
  std::optional<mode_t> mode(const Entry& entry);
  std::optional<int> signal(const Entry& entry);
  // A scalar with ${VAR} expanded, checked to contain no NUL byte (it goes to the kernel).
  std::optional<std::string> expanded(const Entry& entry, std::string_view what);
  // An expanded, non-empty path, made absolute against base_dir() and normalized.
  std::optional<std::string> path(const Entry& entry);

 private:
  // Appends the entries of `node` (a mapping), its merges resolved, to `out`, with key
  // paths under `path`. `depth` counts the merges that led here.
  void collect(const YAML::Node& node, std::string_view path, bool repeats_ok, int depth,
               std::vector<Entry>& out);
  // The entries that the merge key `merge` (with its value) brings into a mapping at
  // `path`, before the mapping's own keys take precedence.
  std::vector<Entry> merged(const YAML::Node& merge, const YAML::Node& value, std::string_view path,
                            int depth);

  const Source& source_;
  std::string base_dir_;
  const Environment& env_;
  std::vector<Diagnostic>& errors_;
  // The mappings whose merges are being resolved, outermost first: a mapping that merges
  // itself (an alias can point back at its own anchor) would otherwise never end.
  std::vector<YAML::Node> merging_;
  // What merges may still bring in to this file, in entries copied and mappings visited:
  // aliases cost nothing to write, and merges of merges could otherwise multiply a few
  // lines into billions of entries.
  std::size_t merge_budget_;
  bool merge_budget_spent_ = false;  // and reported
};

}  // namespace vigil::config::internal
