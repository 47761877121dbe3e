// The daemon's single queue of job deadlines.
#include <doctest/doctest.h>

#include "deadlines.h"

using vigil::core::Deadlines;
using ms = std::chrono::milliseconds;

TEST_CASE("deadlines: the earliest comes first, ties by name") {
  Deadlines d;
  CHECK_FALSE(d.next().has_value());
  d.set("web", ms(300));
  d.set("db", ms(100));
  d.set("api", ms(300));
  REQUIRE(d.next().has_value());
  CHECK(*d.next() == ms(100));
  CHECK(d.take_due(ms(99)).empty());
  CHECK(d.take_due(ms(100)) == std::vector<std::string>{"db"});
  CHECK(*d.next() == ms(300));
  CHECK(d.take_due(ms(1000)) == std::vector<std::string>{"api", "web"});
  CHECK_FALSE(d.next().has_value());
  CHECK(d.size() == 0);
}

TEST_CASE("deadlines: setting again moves a job's deadline, clearing removes it") {
  Deadlines d;
  d.set("web", ms(100));
  d.set("db", ms(200));
  d.set("web", ms(500));  // moved later: db is now first
  CHECK(d.size() == 2);
  CHECK(*d.next() == ms(200));
  CHECK(d.take_due(ms(200)) == std::vector<std::string>{"db"});
  d.clear("web");
  d.clear("web");  // twice, or for an unknown job: nothing
  d.clear("nope");
  CHECK_FALSE(d.next().has_value());
  CHECK(d.take_due(ms(10000)).empty());
}

TEST_CASE("deadlines: many jobs, taken in deadline order") {
  Deadlines d;
  for (int i = 0; i < 1000; ++i) d.set("j" + std::to_string(i), ms((i * 7919) % 1000));
  CHECK(d.size() == 1000);
  auto due = d.take_due(ms(499));
  CHECK(due.size() == 500);
  CHECK(d.size() == 500);
  CHECK(*d.next() == ms(500));
}
