// Line framing for the control protocol: cuts the byte stream of a connection into
// request (or response) lines, with a hard cap on how much one line may hold.
#include "framing.h"

namespace vigil::protocol {

namespace {

// A line made only of spaces and tabs carries no request. Skipping it lets a person
// type into `socat` and press Enter without getting an error back.
bool blank(std::string_view line) {
  return line.find_first_not_of(" \t") == std::string_view::npos;
}

std::string_view strip_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

LineReader::Status LineReader::feed(std::string_view bytes,
                                    const std::function<void(std::string_view)>& on_line) {
  // After an oversized line the reader has lost track of where the next line starts:
  // whatever follows may be the rest of the oversized one. It stays silent from then on.
  if (poisoned_) return Status::ok;

  while (!bytes.empty()) {
    const auto nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      // An incomplete line: keep it, unless it is already too long to ever be accepted.
      // A '\r' that may turn out to precede the newline is allowed one byte beyond the
      // limit, so pending() never exceeds max_line + 1.
      const std::size_t total = partial_.size() + bytes.size();
      if (total > max_line_ + 1 || (total == max_line_ + 1 && bytes.back() != '\r')) {
        return poison();
      }
      partial_.append(bytes);
      return Status::ok;
    }

    std::string_view line;
    // Owns a line assembled from earlier chunks. It is moved out of partial_ before the
    // callback runs, so the reader is in a clean state even if the callback throws.
    std::string assembled;
    if (partial_.empty()) {
      // The common case: the whole line is in this chunk, so hand it out without copying.
      line = bytes.substr(0, nl);
    } else {
      if (partial_.size() + nl > max_line_ + 1) return poison();
      partial_.append(bytes.substr(0, nl));
      assembled = std::move(partial_);
      partial_.clear();
      line = assembled;
    }
    bytes.remove_prefix(nl + 1);

    line = strip_cr(line);
    if (line.size() > max_line_) return poison();
    if (!blank(line)) on_line(line);
  }

  return Status::ok;
}

LineReader::Status LineReader::poison() {
  poisoned_ = true;
  partial_.clear();
  partial_.shrink_to_fit();
  return Status::too_large;
}

}  // namespace vigil::protocol
