// The log writer's bound on open files: beyond set_max_open(), the least recently written
// log is closed and reopened by path on its next write, with nothing lost or misplaced.
#include <doctest/doctest.h>
#include <unistd.h>
#include <uv.h>

#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "log_writer.h"
#include "temp_dir.h"

namespace stdfs = std::filesystem;
using vigil::Chunk;
using vigil::LogPolicy;
using vigil::LogWriter;
using vigil::test::read;
using vigil::test::TempDir;

namespace {

// The files under `dir` that this process has open.
std::set<std::string> open_under(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : stdfs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = stdfs::read_symlink(e.path(), ec);
    if (!ec && target.string().rfind(dir + "/", 0) == 0) out.insert(target.string());
  }
  return out;
}

void put(LogWriter& w, LogWriter::StreamId id, const std::string& text) {
  Chunk c = w.take_buffer();
  std::memcpy(c.data.get(), text.data(), text.size());
  c.size = text.size();
  w.write(id, std::move(c));
}

}  // namespace

TEST_CASE("log writer: at most max_open files open, the busiest kept, the others reopened") {
  TempDir d;
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    LogWriter w(&loop);
    w.set_max_open(2);
    std::vector<LogWriter::StreamId> ids;
    for (int i = 0; i < 5; ++i)
      ids.push_back(w.open(d / ("j" + std::to_string(i) + ".log"), LogPolicy{}, {}));
    // Every file written once, the last one mid-line: only the two written last stay open.
    for (int i = 0; i < 5; ++i)
      put(w, ids[i], "j" + std::to_string(i) + " one\nj" + std::to_string(i) + " part-");
    w.flush();
    CHECK(open_under(d.path) == std::set<std::string>{d / "j3.log", d / "j4.log"});
    // A busy log is written again and again while the others are written in turn: it is
    // never the least recently written, so it stays open throughout.
    for (int i = 0; i < 5; ++i) {
      put(w, ids[0], "busy " + std::to_string(i) + "\n");
      put(w, ids[i], "two\n");
      w.flush();
      CHECK(open_under(d.path).count(d / "j0.log") == 1);
      CHECK(open_under(d.path).size() <= 2);
    }
    for (int i = 1; i < 5; ++i) {
      const std::string n = "j" + std::to_string(i);
      CHECK(read(d / (n + ".log")) == n + " one\n" + n + " part-two\n");
    }
    CHECK(read(d / "j0.log") == "j0 one\nj0 part-busy 0\ntwo\nbusy 1\nbusy 2\nbusy 3\nbusy 4\n");

    // A closed log moved away (logrotate) is written at its path again, as an open one is
    // after reopen_all().
    stdfs::rename(d / "j1.log", d / "j1.log.old");
    stdfs::rename(d / "j0.log", d / "j0.log.old");
    bool reopened = false;
    w.reopen_all([&] { reopened = true; });
    put(w, ids[1], "three\n");
    put(w, ids[0], "three\n");
    w.flush();
    CHECK(reopened);
    CHECK(read(d / "j1.log") == "three\n");
    CHECK(read(d / "j0.log") == "three\n");
    CHECK(open_under(d.path).size() <= 2);
    for (auto id : ids) w.close(id);
    w.flush();
    CHECK(open_under(d.path).empty());
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("log writer: a line cut by a close goes on in its file, and rotates as one line") {
  TempDir d;
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    LogWriter w(&loop);
    w.set_max_open(1);
    // Rotation at 10 bytes. A line that fits in a file is finished in the file where it
    // started, and one longer than that is cut at the bound: both hold across a close,
    // which must not make vigild forget it was in the middle of a line.
    const auto a = w.open(d / "a.log", LogPolicy{10, 1}, {});
    const auto b = w.open(d / "b.log", LogPolicy{10, 1}, {});
    const auto other = w.open(d / "other.log", LogPolicy{}, {});
    put(w, a, "12345\nabc");
    put(w, b, "abcdef");
    put(w, other, "x\n");  // closes a.log and b.log
    put(w, a, "defg\nxy\n");
    put(w, b, "ghijk\n");
    w.flush();
    CHECK(read(d / "a.log.1") == "12345\nabcdefg\n");
    CHECK(read(d / "a.log") == "xy\n");
    CHECK(read(d / "b.log.1") == "abcdefghij");
    CHECK(read(d / "b.log") == "k\n");
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}
