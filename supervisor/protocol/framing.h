// Line framing for the control protocol: newline-delimited JSON over a byte stream.
// Shared by vigild and vigilctl; depends on nothing but the standard library.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace vigil::protocol {

// The longest request line the daemon accepts (the newline excluded).
inline constexpr std::size_t kMaxLine = 1024 * 1024;

// Cuts a byte stream into lines. Bytes arrive in arbitrary pieces (partial lines, several
// lines at once); each complete line is handed out without its '\n' (and without a
// trailing '\r'). Blank lines (nothing but spaces and tabs) are skipped. A line longer
// than the limit poisons the reader: feed() reports it once and ignores everything after,
// since the stream can no longer be trusted. The line handed to on_line is valid only
// during the call.
class LineReader {
 public:
  enum class Status { ok, too_large };

  explicit LineReader(std::size_t max_line = kMaxLine) : max_line_(max_line) {}

  Status feed(std::string_view bytes, const std::function<void(std::string_view)>& on_line);

  // Bytes held for an incomplete line.
  std::size_t pending() const { return partial_.size(); }
  bool poisoned() const { return poisoned_; }

 private:
  // Drops what is held and ignores the rest of the stream.
  Status poison();

  std::size_t max_line_;
  std::string partial_;
  bool poisoned_ = false;
};

}  // namespace vigil::protocol
