// libFuzzer target for the control protocol: the bytes a client can send to vigild.
//
// The input is a byte stream. It is cut into lines by LineReader three ways (at once, in
// two pieces, in many small pieces), each of which must agree with a plain reference
// split, with the default limit and with a small one that exercises the oversized-line
// path. Each line then goes through parse_request (and parse_message, the client's
// parser); every request that comes out must satisfy check_args, hold only numbers that
// the daemon's integers take unchanged, survive encode_request -> parse_request
// unchanged, and give responses and events that are one line and parse back with
// parse_message to what was encoded. Every failure must encode to an error line that
// parses back too.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "framing.h"
#include "message.h"

namespace {

namespace protocol = vigil::protocol;
using protocol::json;

// An invariant that does not hold is a bug: stop here so libFuzzer saves the input.
#define FUZZ_CHECK(condition)                                                                 \
  do {                                                                                        \
    if (!(condition)) {                                                                       \
      std::fprintf(stderr, "fuzz_protocol: check failed: %s (%s:%d)\n", #condition, __FILE__, \
                   __LINE__);                                                                 \
      __builtin_trap();                                                                       \
    }                                                                                         \
  } while (0)

// --- Framing. ---

struct Framed {
  std::vector<std::string> lines;
  bool poisoned = false;
};

// What LineReader must hand out, computed the simple way from the whole stream: split at
// '\n', drop one trailing '\r', skip blank lines, and stop for good at a line longer
// than the limit (or an unfinished one that already is).
Framed reference_split(std::string_view bytes, std::size_t max_line) {
  Framed out;
  while (!bytes.empty()) {
    const std::size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      if (bytes.size() > max_line + 1 || (bytes.size() == max_line + 1 && bytes.back() != '\r')) {
        out.poisoned = true;
      }
      return out;
    }
    std::string_view line = bytes.substr(0, nl);
    bytes.remove_prefix(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > max_line) {
      out.poisoned = true;
      return out;
    }
    if (line.find_first_not_of(" \t") != std::string_view::npos) out.lines.emplace_back(line);
  }
  return out;
}

// The bytes after the last newline: what an unpoisoned reader must be holding.
std::size_t tail_size(std::string_view bytes) {
  const std::size_t nl = bytes.rfind('\n');
  return nl == std::string_view::npos ? bytes.size() : bytes.size() - nl - 1;
}

// Feeds `bytes` cut at `cuts` (increasing offsets) and checks the reader's own
// accounting along the way.
Framed feed_in_pieces(std::string_view bytes, const std::vector<std::size_t>& cuts,
                      std::size_t max_line) {
  protocol::LineReader reader(max_line);
  Framed out;
  int too_large = 0;
  std::size_t start = 0;
  auto feed = [&](std::size_t end) {
    const auto status = reader.feed(bytes.substr(start, end - start), [&](std::string_view line) {
      FUZZ_CHECK(line.size() <= max_line);
      FUZZ_CHECK(line.find('\n') == std::string_view::npos);
      FUZZ_CHECK(line.find_first_not_of(" \t") != std::string_view::npos);
      out.lines.emplace_back(line);
    });
    if (status == protocol::LineReader::Status::too_large) ++too_large;
    FUZZ_CHECK(reader.pending() <= max_line + 1);
    start = end;
  };
  for (std::size_t cut : cuts) feed(cut);
  feed(bytes.size());
  out.poisoned = reader.poisoned();
  FUZZ_CHECK(too_large == (out.poisoned ? 1 : 0));  // reported once, then silence
  FUZZ_CHECK(out.poisoned ? reader.pending() == 0 : reader.pending() == tail_size(bytes));
  return out;
}

void check_same(const Framed& a, const Framed& b) {
  FUZZ_CHECK(a.poisoned == b.poisoned);
  FUZZ_CHECK(a.lines == b.lines);
}

// A cheap deterministic hash of the input, to choose where it is cut.
std::uint64_t hash(std::string_view bytes) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ULL;
  return h;
}

std::uint64_t next(std::uint64_t& state) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

// The lines of `bytes` under `max_line`, after checking that how the bytes arrive does
// not change them.
std::vector<std::string> frame(std::string_view bytes, std::size_t max_line, std::uint64_t seed) {
  const Framed expected = reference_split(bytes, max_line);
  check_same(feed_in_pieces(bytes, {}, max_line), expected);
  std::uint64_t state = seed | 1;
  check_same(feed_in_pieces(bytes, {next(state) % (bytes.size() + 1)}, max_line), expected);
  std::vector<std::size_t> cuts;
  for (std::size_t at = 0;;) {
    at += 1 + next(state) % 16;
    if (at >= bytes.size()) break;
    cuts.push_back(at);
  }
  check_same(feed_in_pieces(bytes, cuts, max_line), expected);
  return expected.lines;
}

// --- Messages. ---

bool is_scalar(const json& j) {
  return !j.is_structured() && !j.is_binary();
}

// One encoded line: non-empty, '\n' at the end and nowhere else. Returns it without the
// newline, parsed back as the client would.
protocol::Message check_line(const std::string& encoded) {
  FUZZ_CHECK(encoded.size() >= 2);
  FUZZ_CHECK(encoded.back() == '\n');
  FUZZ_CHECK(encoded.find('\n') == encoded.size() - 1);
  FUZZ_CHECK(encoded.find('\r') == std::string::npos);
  auto parsed = protocol::parse_message(std::string_view(encoded).substr(0, encoded.size() - 1));
  if (const std::string* problem = std::get_if<std::string>(&parsed)) {
    std::fprintf(stderr, "fuzz_protocol: %s\n  in: %s", problem->c_str(), encoded.c_str());
    FUZZ_CHECK(false && "an encoded line does not parse back");
  }
  return std::get<protocol::Message>(std::move(parsed));
}

// `object` without `keys`, as parse_message gives back what append_members wrote.
json without(json object, std::initializer_list<const char*> keys) {
  for (const char* key : keys) object.erase(key);
  return object;
}

// Whether `s` is valid UTF-8, without an exception per call: replacing and dropping
// bad bytes give the same text only when there are none.
bool valid_utf8(const std::string& s) {
  const json j(s);
  return j.dump(-1, ' ', false, json::error_handler_t::replace) ==
         j.dump(-1, ' ', false, json::error_handler_t::ignore);
}

// A number in an accepted request is one the daemon can take as the C integer it reads
// it into (`signal` as an int, `lines` as a 64-bit count) with its value unchanged: the
// integer, written back as JSON, is the number that was sent.
template <typename T>
void check_round_trip(const json& number) {
  const std::optional<T> value = protocol::to_integer<T>(number);
  FUZZ_CHECK(value.has_value());
  FUZZ_CHECK(json(*value) == number && json(*value).dump() == number.dump());
}

void check_numbers(const protocol::Request& req) {
  for (const auto& [key, value] : req.args.items()) {
    if (!value.is_number()) continue;
    FUZZ_CHECK(value.is_number_integer());  // no command takes a fraction
    check_round_trip<std::int64_t>(value);
    if (key == "signal") {
      check_round_trip<int>(value);
      const int signo = *protocol::to_integer<int>(value);
      FUZZ_CHECK(signo >= 1 && signo <= protocol::kMaxSignalNumber);
    } else {
      FUZZ_CHECK(key == "lines");
      check_round_trip<std::uint64_t>(value);
    }
  }
}

void check_request(const protocol::Request& req) {
  const protocol::CommandInfo* info = protocol::find_command(req.cmd);
  FUZZ_CHECK(info != nullptr);
  FUZZ_CHECK(is_scalar(req.id));
  FUZZ_CHECK(req.args.is_object());
  FUZZ_CHECK(!protocol::check_args(*info, req.args).has_value());
  check_numbers(req);

  // What vigilctl sends for this request is read back by vigild as the same request.
  const std::string sent = protocol::encode_request(req);
  FUZZ_CHECK(sent.back() == '\n' && sent.find('\n') == sent.size() - 1);
  auto again = protocol::parse_request(std::string_view(sent).substr(0, sent.size() - 1));
  const protocol::Request* same = std::get_if<protocol::Request>(&again);
  FUZZ_CHECK(same != nullptr);
  FUZZ_CHECK(same->id == req.id && same->cmd == req.cmd && same->args == req.args);

  const protocol::Message result = check_line(protocol::encode_result(req.id, req.args));
  FUZZ_CHECK(result.ok && !result.event && result.id == req.id && result.result == req.args);

  const protocol::Error error{protocol::code::failed, "job " + req.cmd + " failed", req.args};
  const protocol::Message failure = check_line(protocol::encode_error(req.id, error));
  FUZZ_CHECK(!failure.ok && !failure.event && failure.id == req.id);
  FUZZ_CHECK(failure.error.code == error.code && failure.error.message == error.message);
  const json details = without(req.args, {"code", "message"});
  FUZZ_CHECK(details.empty() ? failure.error.details.is_null() : failure.error.details == details);

  const protocol::Message event = check_line(protocol::encode_event(req.id, req.cmd, req.args));
  FUZZ_CHECK(event.ok && event.event == req.cmd && event.id == req.id);
  FUZZ_CHECK(event.result == without(req.args, {"id", "event"}));
}

void check_failure(const protocol::ParseFailure& failure) {
  FUZZ_CHECK(is_scalar(failure.id));
  FUZZ_CHECK(failure.error.code == protocol::code::bad_request ||
             failure.error.code == protocol::code::unknown_command);
  FUZZ_CHECK(!failure.error.message.empty());

  // The answer vigild sends: its message may quote the client's invalid UTF-8, which is
  // replaced, never a reason not to answer.
  const protocol::Message answer = check_line(protocol::encode_error(failure.id, failure.error));
  FUZZ_CHECK(!answer.ok && answer.id == failure.id && answer.error.code == failure.error.code);
  FUZZ_CHECK(!answer.error.message.empty());
  if (valid_utf8(failure.error.message)) FUZZ_CHECK(answer.error.message == failure.error.message);

  // The same text as an event name, the other place free text meets the encoder.
  const protocol::Message event =
      check_line(protocol::encode_event(failure.id, failure.error.message, failure.error.details));
  FUZZ_CHECK(event.ok && event.event.has_value() && event.id == failure.id);
}

void check_line_of_input(std::string_view line) {
  try {
    auto parsed = protocol::parse_request(line);
    if (const protocol::Request* req = std::get_if<protocol::Request>(&parsed)) {
      check_request(*req);
    } else {
      check_failure(std::get<protocol::ParseFailure>(parsed));
    }
    // The client parses whatever the daemon sends; it must not throw either.
    (void)protocol::parse_message(line);
  } catch (...) {
    FUZZ_CHECK(false && "the protocol code threw");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::uint64_t seed = hash(bytes);
  // A small limit reaches the oversized-line handling with short inputs; the real one is
  // what vigild uses.
  (void)frame(bytes, 1 + seed % 48, seed);
  for (const std::string& line : frame(bytes, protocol::kMaxLine, seed >> 8)) {
    check_line_of_input(line);
  }
  return 0;
}
