// Tests of LineReader: how a byte stream arriving in arbitrary pieces is cut into lines,
// and how an oversized line is refused without the reader holding more than the limit.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "framing.h"

using vigil::protocol::kMaxLine;
using vigil::protocol::LineReader;
using Status = LineReader::Status;

namespace {

// Feeds chunks one by one and records every line and every status.
struct Feeder {
  LineReader reader;
  std::vector<std::string> lines;
  std::vector<Status> statuses;

  explicit Feeder(std::size_t max_line = kMaxLine) : reader(max_line) {}

  Status feed(std::string_view bytes) {
    const Status s =
        reader.feed(bytes, [this](std::string_view line) { lines.emplace_back(line); });
    statuses.push_back(s);
    return s;
  }
};

}  // namespace

TEST_CASE("framing: one complete line") {
  Feeder f;
  CHECK(f.feed("{\"cmd\":\"status\"}\n") == Status::ok);
  CHECK(f.lines == std::vector<std::string>{"{\"cmd\":\"status\"}"});
  CHECK(f.reader.pending() == 0);
}

TEST_CASE("framing: several lines in one read") {
  Feeder f;
  CHECK(f.feed("a\nbb\nccc\n") == Status::ok);
  CHECK(f.lines == std::vector<std::string>{"a", "bb", "ccc"});
  CHECK(f.reader.pending() == 0);
}

TEST_CASE("framing: a line split across reads, one byte at a time") {
  Feeder f;
  const std::string text = "{\"id\":1,\"cmd\":\"version\"}\n{\"cmd\":\"status\"}\n";
  for (char c : text) CHECK(f.feed(std::string_view(&c, 1)) == Status::ok);
  CHECK(f.lines ==
        std::vector<std::string>{"{\"id\":1,\"cmd\":\"version\"}", "{\"cmd\":\"status\"}"});
}

TEST_CASE("framing: a partial line is held until its newline arrives") {
  Feeder f;
  f.feed("first\nsec");
  CHECK(f.lines == std::vector<std::string>{"first"});
  CHECK(f.reader.pending() == 3);
  f.feed("ond\nthi");
  CHECK(f.lines == std::vector<std::string>{"first", "second"});
  CHECK(f.reader.pending() == 3);
  f.feed("rd\n");
  CHECK(f.lines == std::vector<std::string>{"first", "second", "third"});
  CHECK(f.reader.pending() == 0);
}

TEST_CASE("framing: CRLF line endings lose their carriage return") {
  Feeder f;
  f.feed("one\r\ntwo\r");
  f.feed("\nthree\n");
  CHECK(f.lines == std::vector<std::string>{"one", "two", "three"});
}

TEST_CASE("framing: only a trailing carriage return is removed") {
  Feeder f;
  f.feed("a\rb\r\r\n");
  CHECK(f.lines == std::vector<std::string>{"a\rb\r"});
}

TEST_CASE("framing: blank lines are skipped") {
  Feeder f;
  f.feed("\n\r\n  \t\nx\n\n");
  CHECK(f.lines == std::vector<std::string>{"x"});
}

TEST_CASE("framing: a line of exactly the limit is accepted") {
  Feeder f(10);
  CHECK(f.feed("0123456789\n") == Status::ok);
  CHECK(f.lines == std::vector<std::string>{"0123456789"});
  CHECK_FALSE(f.reader.poisoned());
}

TEST_CASE("framing: the limit excludes the CRLF") {
  Feeder f(10);
  CHECK(f.feed("01234") == Status::ok);
  CHECK(f.feed("56789\r") == Status::ok);
  CHECK(f.reader.pending() == 11);
  CHECK(f.feed("\n") == Status::ok);
  CHECK(f.lines == std::vector<std::string>{"0123456789"});
}

TEST_CASE("framing: one byte over the limit is too_large, in one read") {
  Feeder f(10);
  CHECK(f.feed("ok\n0123456789A\nnext\n") == Status::too_large);
  // The line before the oversized one was delivered; nothing after it is.
  CHECK(f.lines == std::vector<std::string>{"ok"});
  CHECK(f.reader.poisoned());
  CHECK(f.reader.pending() == 0);
}

TEST_CASE("framing: an oversized line is reported before its newline arrives") {
  Feeder f(10);
  CHECK(f.feed("01234") == Status::ok);
  CHECK(f.feed("56789") == Status::ok);
  CHECK(f.reader.pending() == 10);
  // The eleventh byte cannot be the start of a CRLF, so the line is already too long.
  CHECK(f.feed("A") == Status::too_large);
  CHECK(f.reader.pending() == 0);
}

TEST_CASE("framing: a carriage return that is not followed by a newline is not excused") {
  Feeder f(10);
  CHECK(f.feed("0123456789\r") == Status::ok);
  CHECK(f.feed("x") == Status::too_large);
}

TEST_CASE("framing: too_large is reported once, then everything is ignored") {
  Feeder f(4);
  CHECK(f.feed("toolong") == Status::too_large);
  CHECK(f.feed("\nfine\n") == Status::ok);
  CHECK(f.feed(std::string(100, 'x')) == Status::ok);
  CHECK(f.lines.empty());
  CHECK(f.reader.pending() == 0);
  CHECK(f.reader.poisoned());
}

TEST_CASE("framing: pending never exceeds the limit plus one, however the bytes come") {
  Feeder f(1000);
  const std::string chunk(300, 'y');
  std::size_t most = 0;
  for (int i = 0; i < 10 && !f.reader.poisoned(); ++i) {
    f.feed(chunk);
    most = std::max(most, f.reader.pending());
  }
  CHECK(most == 900);
  CHECK(f.reader.poisoned());
  CHECK(f.statuses == std::vector<Status>{Status::ok, Status::ok, Status::ok, Status::too_large});
}

TEST_CASE("framing: the default limit is 1 MiB") {
  CHECK(kMaxLine == 1048576);
  Feeder f;
  const std::string at_limit(kMaxLine, 'a');
  CHECK(f.feed(at_limit + "\n") == Status::ok);
  REQUIRE(f.lines.size() == 1);
  CHECK(f.lines[0].size() == kMaxLine);
  CHECK(f.feed(at_limit + "b\n") == Status::too_large);
}

TEST_CASE("framing: bytes are passed through untouched, invalid UTF-8 included") {
  Feeder f;
  f.feed(std::string("\xff\xfe\x00z\n", 5));
  REQUIRE(f.lines.size() == 1);
  CHECK(f.lines[0] == std::string("\xff\xfe\x00z", 4));
}
