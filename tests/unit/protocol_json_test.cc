// Tests of the JSON written and read without a json tree: the writer must give exactly
// the bytes nlohmann's dump gives (escaping, invalid UTF-8, numbers), and the pruning
// parser exactly what json::parse gives, less the members it was told to drop.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <variant>

#include "json_prune.h"
#include "json_write.h"
#include "message.h"

using namespace vigil::protocol;

namespace {

std::string dumped(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string written(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string written(double x) {
  std::string out;
  append_json_number(out, x);
  return out;
}

constexpr std::array<std::string_view, 2> kKeep = {"name", "last_exit"};

}  // namespace

// --- append_json_string ---

TEST_CASE("json string: escapes as nlohmann does") {
  CHECK(written("web") == R"("web")");
  CHECK(written("") == R"("")");
  CHECK(written("a \"quoted\" \\ path") == R"("a \"quoted\" \\ path")");
  CHECK(written("tab\there\nnew\rline\b\f") == R"("tab\there\nnew\rline\b\f")");
  CHECK(written(std::string_view("nul\0esc\x1b", 8)) == R"("nul\u0000esc\u001b")");
  CHECK(written("\x7f") == "\"\x7f\"");  // DEL is not a control character in JSON
}

TEST_CASE("json string: every ASCII byte, alone and together, matches dump()") {
  std::string all;
  for (int c = 0; c < 0x80; ++c) {
    const std::string one(1, static_cast<char>(c));
    CHECK_MESSAGE(written(one) == dumped(json(one)), "byte " << c);
    all += one;
    all += "x";
  }
  CHECK(written(all) == dumped(json(all)));
}

TEST_CASE("json string: UTF-8 is kept, invalid UTF-8 replaced as dump() replaces it") {
  const char* cases[] = {
      "caf\xc3\xa9",                   // é
      "\xf0\x9f\x98\x80 grin",         // U+1F600
      "bad \xff byte",                 // never valid
      "cut \xe2\x82",                  // truncated at the end
      "cut \xe2\x82 then \"text\"\n",  // truncated in the middle, escapes after
      "overlong \xc0\x80",             // an overlong NUL
      "surrogate \xed\xa0\x80",        // UTF-16 surrogates are not UTF-8
      "\"esc\"\t then \xc3\xa9",       // escapes before the first non-ASCII byte
  };
  for (const char* s : cases) CHECK_MESSAGE(written(s) == dumped(json(s)), s);
}

TEST_CASE("json string: appends after what the string already holds") {
  std::string out = "[1,";
  append_json_string(out, "a\"b");
  out += ',';
  append_json_string(out, "\"q\" \xff");  // escapes first, then the slow path
  CHECK(out == "[1," + dumped(json("a\"b")) + "," + dumped(json("\"q\" \xff")));
}

// --- append_json_number, append_json_integer ---

TEST_CASE("json number: the digits dump() writes") {
  CHECK(written(1795341474.4) == "1795341474.4");
  CHECK(written(3.0) == "3.0");
  CHECK(written(0.0) == "0.0");
  CHECK(written(std::nan("")) == "null");
  CHECK(written(std::numeric_limits<double>::infinity()) == "null");
  const double fixed[] = {-0.0,    1.5,   0.001,  1e-5,      1e15,    1e16, 1e17, 123456789012.345,
                          -2.5e-7, 1e300, 5e-324, 0.1 + 0.2, 1.0 / 3, -1e21};
  for (double x : fixed) CHECK_MESSAGE(written(x) == dumped(json(x)), x);
}

TEST_CASE("json number: random doubles and millisecond times match dump()") {
  std::mt19937_64 rng(20261122);
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t bits = rng();
    double x;
    std::memcpy(&x, &bits, sizeof x);
    REQUIRE_MESSAGE(written(x) == dumped(json(x)), "bits " << bits);
  }
  // What status sends: unix seconds and uptimes in milliseconds.
  for (int i = 0; i < 20000; ++i) {
    const double ms = static_cast<double>(rng() % 4'000'000'000'000ULL);
    const double x = std::round(ms) / 1000.0;
    REQUIRE_MESSAGE(written(x) == dumped(json(x)), ms);
  }
}

TEST_CASE("json integer") {
  for (std::int64_t n :
       {std::int64_t{0}, std::int64_t{-1}, std::int64_t{4242},
        std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()}) {
    std::string out;
    append_json_integer(out, n);
    CHECK(out == dumped(json(n)));
  }
}

// --- parse_pruned ---

TEST_CASE("pruned parse: result objects keep only the members asked for") {
  const std::string line =
      R"({"id":1,"ok":true,"result":[)"
      R"({"command":["a",{"deep":[1,{"x":null}]}],"last_exit":{"code":1,"extra":[true]},)"
      R"("log_error":null,"name":"web","pid":7,"since":1.5,"stdout":"/l"},)"
      R"({"name":"db","nested":{"a":{"b":[[],{}]}},"pid":null},)"
      R"({},7,"str",[{"name":"inner","pid":1}]]})";
  const json j = parse_pruned(line, kKeep);
  CHECK(j == json::parse(R"({"id":1,"ok":true,"result":[)"
                         R"({"last_exit":{"code":1,"extra":[true]},"name":"web"},)"
                         R"({"name":"db"},)"
                         R"({},7,"str",[{"name":"inner","pid":1}]]})"));
}

TEST_CASE("pruned parse: everything but the result array is kept whole") {
  const std::string error = R"({"id":"x","ok":false,"error":{"code":"failed","message":"m",)"
                            R"("jobs":[{"name":"web","ok":false,"log":"/l","pid":null}]}})";
  CHECK(parse_pruned(error, kKeep) == json::parse(error));
  const std::string other = R"({"id":2,"ok":true,"result":{"text":"a","pid":3},"x":[{"y":1}]})";
  CHECK(parse_pruned(other, kKeep) == json::parse(other));
  CHECK(parse_pruned(R"([{"a":1}])", kKeep) == json::parse(R"([{"a":1}])"));
  CHECK(parse_pruned(R"([{"result":1},[{"a":1}]])", kKeep) ==
        json::parse(R"([{"result":1},[{"a":1}]])"));
  CHECK(parse_pruned("42", kKeep) == 42);
  // An inner "result" is not the answer's.
  const std::string inner = R"({"x":{"result":[{"pid":1}]}})";
  CHECK(parse_pruned(inner, kKeep) == json::parse(inner));
}

TEST_CASE("pruned parse: numbers, duplicate keys and types as json::parse has them") {
  const std::string line = R"({"result":[{"name":"a","name":"b","last_exit":-3}],"u":1,"f":1.0})";
  const json j = parse_pruned(line, kKeep);
  CHECK(j == json::parse(line));
  CHECK(j["result"][0]["name"] == "b");
  CHECK(j["u"].is_number_unsigned());
  CHECK(j["f"].is_number_float());
  CHECK(j["result"][0]["last_exit"].is_number_integer());
}

TEST_CASE("pruned parse: malformed input fails with json::parse's exception and message") {
  for (const char* bad : {"", "{", R"({"result":[{"name":1,"pid":}]})",
                          R"({"result":[{"pid":[1,}]})", "{} x", "{\"a\":\"\xff\"}", "[1e999]"}) {
    std::string expected;
    try {
      const json j = json::parse(bad);
      (void)j;
    } catch (const json::exception& e) {
      expected = e.what();
    }
    REQUIRE_MESSAGE(!expected.empty(), bad);
    CHECK_THROWS_WITH_AS(parse_pruned(bad, kKeep), expected.c_str(), json::exception);
  }
}

TEST_CASE("parse_message with fields to keep: the same message, pruned") {
  const std::string ok = R"({"id":3,"ok":true,"result":[{"name":"web","pid":1,"command":["x"]}]})";
  auto pruned = parse_message(ok, kKeep);
  REQUIRE(std::holds_alternative<Message>(pruned));
  CHECK(std::get<Message>(pruned).id == 3);
  CHECK(std::get<Message>(pruned).ok);
  CHECK(std::get<Message>(pruned).result == json::parse(R"([{"name":"web"}])"));

  const std::string refused = R"({"id":3,"ok":false,"error":{"code":"not_found","message":"m"}})";
  auto err = parse_message(refused, kKeep);
  REQUIRE(std::holds_alternative<Message>(err));
  CHECK(std::get<Message>(err).error.code == "not_found");

  auto bad = parse_message("{\"id\":", kKeep);
  REQUIRE(std::holds_alternative<std::string>(bad));
  CHECK(std::get<std::string>(bad) == std::get<std::string>(parse_message("{\"id\":")));
}
