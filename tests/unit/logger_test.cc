// The daemon's own log: its rotation (the job logs' policy, 10 MiB and 5 backups), and
// the hand-over to the log writer thread while the daemon runs, with its bound.
#include <doctest/doctest.h>
#include <stdlib.h>
#include <uv.h>

#include <filesystem>
#include <regex>
#include <sstream>
#include <string>

#include "log_writer.h"
#include "logger.h"
#include "temp_dir.h"

namespace stdfs = std::filesystem;
using vigil::test::TempDir;
using vigil::test::read;

TEST_CASE("daemon log: timestamped lines, rotated at 10 MiB with whole lines") {
  TempDir d;
  const std::string p = d.path + "/vigild.log";
  vigil::Logger log;
  REQUIRE(log.use_file(p).empty());
  const std::string filler(200, 'x');
  for (int i = 0; i < 60'000; ++i) log.info("line " + std::to_string(i) + " " + filler);  // ~13 MB
  REQUIRE(stdfs::exists(p + ".1"));
  CHECK_FALSE(stdfs::exists(p + ".2"));
  CHECK(stdfs::file_size(p + ".1") <= 10 * 1024 * 1024);
  CHECK(stdfs::file_size(p + ".1") > 10 * 1024 * 1024 - 300);
  const std::string older = read(p + ".1");
  CHECK(older.back() == '\n');
  const std::regex line(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info: line \d+ x+)");
  std::istringstream first(older);
  std::string l;
  std::getline(first, l);
  CHECK(std::regex_match(l, line));
  const std::string now = read(p);
  CHECK(now.find("line 59999 ") != std::string::npos);
}

TEST_CASE("daemon log: through the writer thread while attached, bounded, then direct again") {
  TempDir d;
  const std::string p = d.path + "/vigild.log";
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    vigil::Logger log;
    REQUIRE(log.use_file(p).empty());
    vigil::LogWriter writer(&loop);
    log.attach(writer);
    log.info("attached");
    writer.flush();  // written by the thread, and accounted for
    CHECK(read(p).find("info: attached\n") != std::string::npos);
    // The loop does not run here, so nothing written is accounted for until flush():
    // past 1 MiB in flight, lines are dropped and counted, not queued without bound.
    const std::string filler(1000, 'y');
    for (int i = 0; i < 3000; ++i) log.info(filler);  // ~3 MB
    log.detach();
    log.info("direct again");
    const std::string text = read(p);
    std::smatch m;
    REQUIRE(std::regex_search(text, m, std::regex(R"(\[vigil: (\d+) bytes of this log dropped: the disk did not keep up\])")));
    const long dropped = std::stol(m[1]);
    CHECK(dropped > 1'000'000);
    CHECK(dropped < 3'000'000);
    CHECK(text.ends_with("Z info: direct again\n"));
  }
  uv_run(&loop, UV_RUN_DEFAULT);  // the writer's handle closes
  CHECK(uv_loop_close(&loop) == 0);
}
