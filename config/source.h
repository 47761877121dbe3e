// One config file on its way from bytes to a YAML tree: reading it with a size cap,
// rejecting text that is not text, and turning yaml-cpp's exceptions and quirks into
// diagnostics. Internal to config/.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "spec.h"

namespace vigil::config::internal {

// Config files are small; anything bigger is a mistake (a log file named by a glob, a
// device) and is refused before yaml-cpp sees it.
constexpr std::size_t kMaxFileBytes = 4 * 1024 * 1024;

// The result of reading a file from disk.
struct FileData {
  std::string text;
  // Identifies the file independently of the path used to reach it, for include loops.
  dev_t device = 0;
  ino_t inode = 0;
  // errno when the file could not be read; 0 otherwise.
  int error = 0;
  // What the file is when it is not a regular file (or a folder: that is EISDIR), such
  // as "a FIFO"; it is then not read at all.
  const char* not_regular = nullptr;
  // Set when the file is larger than kMaxFileBytes; `text` is then empty.
  std::optional<std::size_t> too_large;
};

// Reads a regular file of at most kMaxFileBytes. Anything else (a FIFO, a device) is
// refused without waiting or reading, so that it cannot make the loader hang.
FileData read_file(const std::string& path);

// Why a file could not be read ("No such file or directory", "not a regular file (a
// FIFO)"), when `error` or `not_regular` is set.
std::string read_failure(const FileData& data);

// The message for a file over the size limit (without a position).
std::string too_large_message(std::size_t size);

// A file's text and its parsed YAML, with the conversions from yaml-cpp's marks.
class Source {
 public:
  // `display` is the file name used in messages.
  Source(std::string display, std::string text);

  // Checks and parses the text, adding a diagnostic for each problem. Returns false when
  // there is no usable tree (then root() is Null and the file has been reported).
  bool parse(std::vector<Diagnostic>& errors);

  const std::string& display() const { return display_; }
  const YAML::Node& root() const { return root_; }

  // The 1-based position of a yaml-cpp mark, with the column counted in characters.
  Location where(const YAML::Mark& mark) const;
  Location where(const YAML::Node& node) const { return where(node.Mark()); }

  // True when a Null node was written as null or ~ (rather than left empty).
  bool explicit_null(const YAML::Node& node) const;

 private:
  std::optional<Diagnostic> check_text() const;
  // Checks the parse events for what yaml-cpp gets wrong; sets `second_document` to
  // where a second document starts, if there is one.
  std::optional<Diagnostic> check_events(std::optional<YAML::Mark>& second_document) const;
  std::string tab_hint(int line) const;

  std::string display_;
  std::string text_;
  // yaml-cpp skips a byte order mark without counting it in its offsets.
  std::size_t bom_ = 0;
  YAML::Node root_;
};

}  // namespace vigil::config::internal
