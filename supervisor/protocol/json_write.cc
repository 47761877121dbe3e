// A minimal JSON writer that matches nlohmann's serializer byte for byte.
#include "json_write.h"

#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

namespace vigil::protocol {

namespace {

// The two-character escape JSON has for `c`, or "" (a control character without one is
// written as \u00XX).
std::string_view short_escape(unsigned char c) {
  switch (c) {
    case '"':
      return "\\\"";
    case '\\':
      return "\\\\";
    case '\b':
      return "\\b";
    case '\f':
      return "\\f";
    case '\n':
      return "\\n";
    case '\r':
      return "\\r";
    case '\t':
      return "\\t";
    default:
      return {};
  }
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  const std::size_t start = out.size();
  out += '"';
  std::size_t plain = 0;  // start of the bytes not yet copied
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      // Names, paths and argv are ASCII nearly always. For the rest, nlohmann's own
      // decoder decides what is valid UTF-8 and how the rest is replaced, as it does for
      // every other line vigild sends.
      out.resize(start);
      out += nlohmann::json(std::string(s))
                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      return;
    }
    if (c >= 0x20 && c != '"' && c != '\\') continue;  // copied as it is, with its run
    out.append(s.data() + plain, i - plain);
    plain = i + 1;
    if (const std::string_view e = short_escape(c); !e.empty()) {
      out += e;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";  // lower case, as nlohmann writes
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  out.append(s.data() + plain, s.size() - plain);
  out += '"';
}

void append_json_number(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  // nlohmann's own Grisu2 conversion (what its serializer calls for every double), so
  // that the digits are the ones json::dump() writes, not merely an equivalent spelling.
  // It is in nlohmann's detail namespace: the unit tests compare with dump() to catch a
  // version that changes it.
  char buf[64];
  const char* end = nlohmann::detail::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, static_cast<std::size_t>(end - buf));
}

void append_json_integer(std::string& out, std::int64_t value) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

}  // namespace vigil::protocol
