// Reading and parsing one config file. yaml-cpp is the only YAML parser here, and this
// file is where its exceptions stop: everything it throws becomes a Diagnostic.
#include "source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>

#include "internal.h"
#include "values.h"

namespace vigil::config::internal {
namespace {

// Walks yaml-cpp's parse events once, before the tree is built, to work around two
// problems of yaml-cpp 0.7:
// - it accepts `key: "abc` followed by a newline at the end of a file, swallowing the
//   rest of the file into the string; the events still tell where each quoted scalar
//   starts, so the text can be checked for its closing quote;
// - on a "," outside [ ] or { } it reports an empty document without consuming the
//   comma, forever, so YAML::LoadAll never returns (yaml-cpp issue #1040). The start of
//   each document is recorded so that the caller can stop when one makes no progress.
class EventCheck : public YAML::EventHandler {
 public:
  EventCheck(const std::string& text, std::size_t bom) : text_(text), bom_(bom) {}

  std::optional<YAML::Mark> unterminated;
  YAML::Mark document_start;

  void OnDocumentStart(const YAML::Mark& mark) override { document_start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t,
                const std::string&) override {
    if (unterminated || tag != "!" || mark.pos < 0) return;
    const std::size_t start = static_cast<std::size_t>(mark.pos) + bom_;
    if (start >= text_.size()) return;
    const char quote = text_[start];
    if (quote != '"' && quote != '\'') return;
    std::size_t i = start + 1;
    while (i < text_.size()) {
      if (quote == '"' && text_[i] == '\\') {
        i += 2;
      } else if (quote == '\'' && text_[i] == '\'' && i + 1 < text_.size() &&
                 text_[i + 1] == '\'') {
        i += 2;  // '' is an escaped quote inside a single-quoted string
      } else if (text_[i] == quote) {
        return;
      } else {
        ++i;
      }
    }
    unterminated = mark;
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

 private:
  const std::string& text_;
  std::size_t bom_;
};

// What a file that is neither a regular file nor a folder is, for messages.
const char* file_type_name(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a file";
}

}  // namespace

FileData read_file(const std::string& path) {
  FileData data;
  // O_NONBLOCK: opening a FIFO would otherwise wait for a writer, forever. Symlinks are
  // followed on purpose (a config linked from elsewhere is legitimate).
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    data.error = errno;
    return data;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    data.error = errno;
  } else if (S_ISDIR(st.st_mode)) {
    data.error = EISDIR;
  } else if (!S_ISREG(st.st_mode)) {
    // A FIFO, socket or device is never a config file: reading one could block, or
    // never end, or have side effects (a tape rewinds, /dev/kmsg eats messages).
    data.not_regular = file_type_name(st.st_mode);
  } else if (static_cast<std::size_t>(st.st_size) > kMaxFileBytes) {
    data.too_large = static_cast<std::size_t>(st.st_size);
  } else {
    data.device = st.st_dev;
    data.inode = st.st_ino;
    char buffer[65536];
    for (;;) {
      const ssize_t n = read(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        data.error = errno;
        break;
      }
      if (n == 0) break;
      data.text.append(buffer, static_cast<std::size_t>(n));
      if (data.text.size() > kMaxFileBytes) {
        data.too_large = data.text.size();
        data.text.clear();
        break;
      }
    }
  }
  close(fd);
  return data;
}

std::string read_failure(const FileData& data) {
  if (data.not_regular) return std::string("not a regular file (") + data.not_regular + ")";
  return std::strerror(data.error);
}

std::string too_large_message(std::size_t size) {
  return "too large for a config file (" + std::to_string(size) + " bytes; expected at most 4 MiB)";
}

Source::Source(std::string display, std::string text)
    : display_(std::move(display)), text_(std::move(text)) {
  if (text_.starts_with("\xEF\xBB\xBF")) bom_ = 3;
}

std::optional<Diagnostic> Source::check_text() const {
  int line = 1, column = 1;
  std::size_t i = 0;
  while (i < text_.size()) {
    const unsigned char c = static_cast<unsigned char>(text_[i]);
    const std::size_t length = utf8_length_at(text_, i);
    const auto hex = [c] {
      char text[8];
      std::snprintf(text, sizeof text, "0x%02x", c);
      return std::string(text);
    };
    if (length == 0) {
      return Diagnostic{{display_, line, column}, "expected UTF-8 text, got the byte " + hex()};
    }
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
      return Diagnostic{{display_, line, column},
                        "expected text, got the control character " + hex()};
    }
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    i += length;
  }
  return std::nullopt;
}

std::optional<Diagnostic> Source::check_events(std::optional<YAML::Mark>& second_document) const {
  EventCheck check(text_, bom_);
  std::istringstream in(text_);
  YAML::Parser parser(in);
  int documents = 0;
  int last_start = -1;
  while (parser.HandleNextDocument(check)) {
    if (check.document_start.pos <= last_start) {
      // No progress: the token at this position is one yaml-cpp cannot place.
      const std::size_t pos = static_cast<std::size_t>(check.document_start.pos) + bom_;
      const std::string token = pos < text_.size() ? text_.substr(pos, 1) : "";
      std::string message = "YAML syntax error: unexpected " + quote(token);
      if (token == ",") message += " (a comma separates items only inside [ ] or { })";
      return Diagnostic{where(check.document_start), message};
    }
    last_start = check.document_start.pos;
    if (++documents == 2) second_document = check.document_start;
    if (check.unterminated) break;
  }
  if (!check.unterminated) return std::nullopt;
  const char mark = text_[static_cast<std::size_t>(check.unterminated->pos) + bom_];
  return Diagnostic{where(*check.unterminated),
                    std::string("YAML syntax error: missing closing ") + mark +
                        " (this quoted string runs to the end of the file)"};
}

std::string Source::tab_hint(int line) const {
  // yaml-cpp reports tab indentation as "illegal map value" and the like; naming the
  // line with the tab points at the real cause.
  int current = 1;
  std::size_t start = 0;
  while (start < text_.size() && current <= line) {
    std::size_t i = start;
    bool tab = false;
    while (i < text_.size() && (text_[i] == ' ' || text_[i] == '\t')) tab |= text_[i++] == '\t';
    const bool content =
        i < text_.size() && text_[i] != '\n' && text_[i] != '\r' && text_[i] != '#';
    if (tab && content) {
      return " (line " + std::to_string(current) +
             " is indented with a tab; YAML indentation must use spaces)";
    }
    const std::size_t end = text_.find('\n', start);
    if (end == std::string::npos) break;
    start = end + 1;
    ++current;
  }
  return "";
}

bool Source::parse(std::vector<Diagnostic>& errors) {
  if (std::optional<Diagnostic> problem = check_text()) {
    errors.push_back(*problem);
    return false;
  }
  std::optional<YAML::Mark> second_document;
  try {
    if (std::optional<Diagnostic> problem = check_events(second_document)) {
      errors.push_back(*problem);
      return false;
    }
    // Only the first document is built; a second one is reported below.
    root_ = YAML::Load(text_);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own message for this is "bad file".
    errors.push_back({where(e.mark), "YAML syntax error: nested too deeply (expected at most " +
                                         std::to_string(e.depth() - 1) +
                                         " levels of lists and mappings)"});
    return false;
  } catch (const YAML::Exception& e) {
    const Location at = where(e.mark);
    // yaml-cpp quotes bits of the input in some messages ("bad YAML version: ...").
    errors.push_back({at, "YAML syntax error: " + escape_controls(e.msg) + tab_hint(at.line)});
    return false;
  } catch (const std::exception& e) {
    errors.push_back({{display_, 0, 0}, "cannot parse the YAML: " + escape_controls(e.what())});
    return false;
  }
  if (second_document) {
    errors.push_back({where(*second_document),
                      "expected a single YAML document, found a second one (--- starts a new "
                      "document)"});
  }
  return true;
}

Location Source::where(const YAML::Mark& mark) const {
  if (mark.is_null() || mark.line < 0) return {display_, 0, 0};
  Location at{display_, mark.line + 1, mark.column + 1};
  if (mark.pos < 0) return at;
  // yaml-cpp counts columns in bytes; people and editors count characters.
  const std::size_t pos = std::min(static_cast<std::size_t>(mark.pos) + bom_, text_.size());
  std::size_t start = 0;
  if (pos > 0) {
    const std::size_t newline = text_.rfind('\n', pos - 1);
    if (newline != std::string::npos) start = newline + 1;
  }
  if (start < bom_) start = std::min(bom_, pos);
  int column = 1;
  for (std::size_t i = start; i < pos;) {
    const std::size_t length = utf8_length_at(text_, i);
    i += length == 0 ? 1 : length;
    ++column;
  }
  at.column = column;
  return at;
}

bool Source::explicit_null(const YAML::Node& node) const {
  const YAML::Mark mark = node.Mark();
  if (mark.pos < 0) return false;
  const std::size_t pos = static_cast<std::size_t>(mark.pos) + bom_;
  if (pos >= text_.size()) return false;
  const std::string_view rest = std::string_view(text_).substr(pos);
  for (std::string_view literal : {"null", "Null", "NULL", "~"}) {
    if (!rest.starts_with(literal)) continue;
    if (rest.size() == literal.size()) return true;
    const char next = rest[literal.size()];
    if (next == ' ' || next == '\t' || next == '\n' || next == '\r' || next == ',' || next == ']' ||
        next == '}' || next == '#') {
      return true;
    }
  }
  return false;
}

}  // namespace vigil::config::internal
