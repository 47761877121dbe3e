// LogFile and LineStamper against real files in a temp folder, with a fake clock.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "file_reaper.h"
#include "fsutil.h"
#include "log_file.h"
#include "temp_dir.h"

using vigil::LineStamper;
using vigil::LogFile;
using vigil::LogPolicy;
namespace stdfs = std::filesystem;
using vigil::test::TempDir;
using vigil::test::read;

namespace {

struct FakeClock {
  struct timespec now {1'700'000'000, 123'000'000};
  LogFile::Clock fn() {
    return [this] { return now; };
  }
};

}  // namespace

TEST_CASE("appends, creating the file 0640 and its folder") {
  TempDir d;
  LogFile f(d / "sub/job.out.log", LogPolicy{});
  CHECK(f.write("one\n"));
  CHECK(f.write("two\n"));
  CHECK(read(d / "sub/job.out.log") == "one\ntwo\n");
  struct stat st {};
  REQUIRE(::stat((d / "sub/job.out.log").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
  REQUIRE(::stat((d / "sub").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0750);
}

TEST_CASE("rotates at the size bound, at a line boundary, keeping N backups") {
  TempDir d;
  const std::string p = d / "j.log";
  LogFile f(p, LogPolicy{20, 2});
  f.write("aaaaaaaaa\n");  // 10 bytes
  f.write("bbbbbbbbb\n");  // 20: exactly at the bound, still fits
  CHECK(read(p) == "aaaaaaaaa\nbbbbbbbbb\n");
  f.write("ccccccccc\n");  // would pass 20: rotate first
  CHECK(read(p) == "ccccccccc\n");
  CHECK(read(p + ".1") == "aaaaaaaaa\nbbbbbbbbb\n");
  f.write("ddddddddd\neeeeeeeee\nfffffffff\n");  // cut after the line that fits
  CHECK(read(p + ".2") == "aaaaaaaaa\nbbbbbbbbb\n");
  CHECK(read(p + ".1") == "ccccccccc\nddddddddd\n");
  CHECK(read(p) == "eeeeeeeee\nfffffffff\n");
  f.write("g\n");
  CHECK_FALSE(stdfs::exists(p + ".3"));  // the oldest is dropped
  CHECK(read(p + ".2") == "ccccccccc\nddddddddd\n");
  CHECK(read(p) == "g\n");
}

TEST_CASE("a line that fits in a file is finished where it started") {
  TempDir d;
  const std::string p = d / "j.log";
  LogFile f(p, LogPolicy{10, 1});
  f.write("12345\n");  // 6 bytes
  f.write("abc");       // 9, mid-line
  f.write("defg\nxy\n");  // the line is 8 bytes: it ends in this file (14), then rotate
  CHECK(read(p + ".1") == "12345\nabcdefg\n");
  CHECK(read(p) == "xy\n");
}

TEST_CASE("a line longer than the bound is cut at the bound") {
  TempDir d;
  const std::string p = d / "j.log";
  LogFile f(p, LogPolicy{8, 3});
  f.write("ab\n");
  f.write("0123456789012345\nxy\n");
  CHECK(read(p + ".3") == "ab\n");
  CHECK(read(p + ".2") == "01234567");
  CHECK(read(p + ".1") == "89012345\n");  // the line's end stays with it
  CHECK(read(p) == "xy\n");
}

TEST_CASE("output without any newline still rotates at the bound") {
  TempDir d;
  const std::string p = d / "j.log";
  LogFile f(p, LogPolicy{1000, 2});
  const std::string block(300, 'z');
  for (int i = 0; i < 20; ++i) f.write(block);  // 6000 bytes, no newline
  CHECK(stdfs::file_size(p + ".1") == 1000);
  CHECK(stdfs::file_size(p + ".2") == 1000);
  CHECK(stdfs::file_size(p) <= 1000);
  CHECK_FALSE(stdfs::exists(p + ".3"));
}

TEST_CASE("size 0 never rotates; backups 0 starts the file over") {
  TempDir d;
  LogFile never(d / "n.log", LogPolicy{0, 5});
  for (int i = 0; i < 100; ++i) never.write("0123456789\n");
  CHECK(stdfs::file_size(d / "n.log") == 1100);
  CHECK_FALSE(stdfs::exists(d / "n.log.1"));
  LogFile none(d / "z.log", LogPolicy{12, 0});
  none.write("first line\n");
  none.write("second line\n");
  CHECK(read(d / "z.log") == "second line\n");
  CHECK_FALSE(stdfs::exists(d / "z.log.1"));
}

TEST_CASE("reopen follows a file moved away (logrotate)") {
  TempDir d;
  const std::string p = d / "j.log";
  LogFile f(p, LogPolicy{});
  f.write("before\n");
  stdfs::rename(p, p + ".old");
  f.write("still old\n");  // the descriptor still points at the moved file
  CHECK(f.reopen() == "");
  f.write("after\n");
  CHECK(read(p + ".old") == "before\nstill old\n");
  CHECK(read(p) == "after\n");
}

TEST_CASE("an unwritable log drops output, retries once a second, then reports the loss") {
  TempDir d;
  FakeClock clock;
  const std::string dir = d / "locked";
  stdfs::create_directory(dir);
  // A folder where the file cannot be created (a file in the way of the path).
  const std::string p = dir + "/blocker/j.log";
  std::ofstream(dir + "/blocker") << "not a folder";
  LogFile f(p, LogPolicy{}, clock.fn());
  CHECK_FALSE(f.write("lost 1\n"));
  // The message names the folder that could not be made and the file in its way.
  CHECK(f.error() == "cannot create " + dir + "/blocker: " + dir + "/blocker is not a directory");
  CHECK(f.dropped() == 7);
  clock.now.tv_nsec += 500'000'000;  // within the retry pace: not even tried
  CHECK_FALSE(f.write("lost 2\n"));
  CHECK(f.dropped() == 14);
  stdfs::remove(dir + "/blocker");
  CHECK_FALSE(f.write("lost 3\n"));  // still within the second
  clock.now.tv_sec += 2;
  CHECK(f.write("back\n"));
  CHECK(f.error().empty());
  CHECK(f.dropped() == 0);
  const std::string text = read(p);
  CHECK(text.rfind("[vigil: 21 bytes dropped: cannot create " + dir + "/blocker: ", 0) == 0);
  CHECK(text.substr(text.size() - 5) == "back\n");
}

TEST_CASE("a planted symlink is refused, and the message says which file and why") {
  TempDir d;
  const std::string victim = d / "victim";
  std::ofstream(victim) << "precious\n";
  const std::string p = d / "j.out.log";
  stdfs::create_symlink(victim, p);
  LogFile f(p, LogPolicy{});
  CHECK_FALSE(f.write("x\n"));
  CHECK(f.error() == p + " is a symbolic link; vigild does not follow links for logs (a planted "
                         "link could make it write elsewhere)");
  CHECK(read(victim) == "precious\n");
  // A link in the folder part is followed like any path: only the last part is refused,
  // and other failures keep their own words.
  const std::string missing = d / "no-such-folder-link";
  stdfs::create_directory_symlink(d / "nowhere", missing);
  LogFile g(missing + "/x.log", LogPolicy{});
  CHECK_FALSE(g.write("x\n"));
  CHECK(g.error().find("symbolic link") == std::string::npos);
}

TEST_CASE("make_dirs names the folder asked for and what is in its way") {
  TempDir d;
  const std::string file = d / "file";
  std::ofstream(file) << "";
  CHECK(vigil::fs::make_dirs(file + "/a/b", 0755) ==
        "cannot create " + file + "/a/b: " + file + " is not a directory");
  CHECK(vigil::fs::make_dirs(file, 0755) ==
        "cannot create " + file + ": " + file + " is not a directory");
  CHECK(vigil::fs::make_dirs(d / "x/y", 0755) == "");
  CHECK(stdfs::is_directory(d / "x/y"));
  if (::geteuid() != 0) {
    ::chmod((d / "x").c_str(), 0500);
    CHECK(vigil::fs::make_dirs(d / "x/z/w", 0755) ==
          "cannot create " + (d / "x/z/w") + ": " + (d / "x/z") + ": Permission denied");
    ::chmod((d / "x").c_str(), 0700);
  }
}

TEST_CASE("the dropped count is exactly the bytes that did not reach the file") {
  // /dev/full opens and refuses every write with ENOSPC, like a full disk.
  FakeClock clock;
  LogFile f("/dev/full", LogPolicy{}, clock.fn());
  const std::string chunk(100'000, 'x');
  std::uint64_t sent = 0;
  for (int i = 0; i < 5; ++i) {
    CHECK_FALSE(f.write(chunk));
    sent += chunk.size();
    CHECK(f.dropped() == sent);
    // Past the retry pace: the next write tries again (the note first) and fails again.
    clock.now.tv_sec += 2;
  }
  CHECK(f.error() == "cannot write /dev/full: No space left on device");
}

namespace {

// A disk that fills up at a given file size, for this process: writes are cut short at
// the limit and then refused (EFBIG), as a full disk cuts them short and refuses them
// with ENOSPC. SIGXFSZ, which would kill the process, is ignored meanwhile.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit lower = saved_;
    lower.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &lower) == 0);
  }
  ~FileSizeLimit() { lift(); }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;
  // Space is back.
  void lift() {
    if (lifted_) return;
    lifted_ = true;
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    ::signal(SIGXFSZ, old_handler_);
  }

 private:
  struct rlimit saved_ {};
  sighandler_t old_handler_ = SIG_DFL;
  bool lifted_ = false;
};

}  // namespace

TEST_CASE("a disk that fills mid-line: the dropped-bytes note still gets a line of its own") {
  TempDir d;
  FakeClock clock;
  const std::string p = d / "j.log";
  LogFile f(p, LogPolicy{}, clock.fn());
  REQUIRE(f.write("line 107\n"));  // 9 bytes
  {
    // Room for 4 more bytes: the next write is cut short inside "line 108".
    FileSizeLimit full(9 + 4);
    CHECK_FALSE(f.write("line 108\nline 109\n"));
    CHECK(f.dropped() == 14);            // what did not reach the file, exactly
    CHECK_FALSE(f.write("line 110\n"));  // within the retry pace: dropped too
    CHECK(f.dropped() == 23);
  }
  clock.now.tv_sec += 2;
  CHECK(f.write("line 111\n"));
  CHECK(read(p) == "line 107\nline\n[vigil: 23 bytes dropped: cannot write " + p +
                       ": File too large]\nline 111\n");
  // A file that ends mid-line when writing fails at once (nothing of the write got in):
  // the note starts on a line of its own there too, and ends with one.
  CHECK(f.write("partial"));
  {
    FileSizeLimit full(stdfs::file_size(p));
    CHECK_FALSE(f.write(" rest\n"));
  }
  clock.now.tv_sec += 2;
  CHECK(f.write("next\n"));
  const std::string text = read(p);
  const std::string tail =
      "partial\n[vigil: 6 bytes dropped: cannot write " + p + ": File too large]\nnext\n";
  REQUIRE(text.size() >= tail.size());
  CHECK(text.substr(text.size() - tail.size()) == tail);
}

TEST_CASE("a file that already ends mid-line is known to, from its first write on") {
  // Its last byte is read back, although the log is opened for writing only.
  TempDir d;
  FakeClock clock;
  const std::string p = d / "j.log";
  std::ofstream(p) << "left by the last run";
  LogFile f(p, LogPolicy{}, clock.fn());
  {
    FileSizeLimit full(stdfs::file_size(p));
    CHECK_FALSE(f.write("lost\n"));
  }
  clock.now.tv_sec += 2;
  CHECK(f.write("next\n"));
  CHECK(read(p) == "left by the last run\n[vigil: 5 bytes dropped: cannot write " + p +
                       ": File too large]\nnext\n");
}

TEST_CASE("tail: the last lines, reaching into the rotated file when short") {
  TempDir d;
  const std::string p = d / "j.log";
  std::ofstream(p + ".1") << "a\nb\nc\n";
  std::ofstream(p) << "d\ne\nunfinished";
  auto t = vigil::tail_lines(p, 2, 1 << 20);
  CHECK(t.text == "e\nunfinished");
  CHECK_FALSE(t.truncated);
  t = vigil::tail_lines(p, 5, 1 << 20);
  CHECK(t.text == "b\nc\nd\ne\nunfinished");
  t = vigil::tail_lines(p, 100, 1 << 20);  // more than there are: all of both
  CHECK(t.text == "a\nb\nc\nd\ne\nunfinished");
  CHECK(vigil::tail_lines(p, 0, 1 << 20).text.empty());
  CHECK_FALSE(t.missing);
}

TEST_CASE("tail: a log not written yet is empty and missing; an unreadable one is an error") {
  TempDir d;
  auto t = vigil::tail_lines(d / "none.log", 10, 1 << 20);
  CHECK(t.text.empty());
  CHECK(t.error.empty());
  CHECK(t.missing);
  // Just rotated, nothing written since: the rotated file is the log, not missing.
  std::ofstream(d / "moved.log.1") << "old\n";
  t = vigil::tail_lines(d / "moved.log", 10, 1 << 20);
  CHECK(t.text == "old\n");
  CHECK_FALSE(t.missing);
  // Exists and is empty: not missing.
  std::ofstream(d / "empty.log").flush();
  CHECK_FALSE(vigil::tail_lines(d / "empty.log", 10, 1 << 20).missing);
  // A path that cannot be opened (even by root: a file in place of its folder).
  std::ofstream(d / "file") << "x";
  t = vigil::tail_lines(d / "file/j.log", 10, 1 << 20);
  CHECK(t.error == "cannot read " + (d / "file/j.log") + ": Not a directory");
  CHECK_FALSE(t.missing);
}

TEST_CASE("tail: at most max_bytes, from a line start, across many blocks") {
  TempDir d;
  const std::string p = d / "big.log";
  {
    std::ofstream f(p);
    for (int i = 0; i < 200'000; ++i) f << "line " << i << "\n";  // about 2.3 MB
  }
  auto t = vigil::tail_lines(p, 3, 1 << 20);
  CHECK(t.text == "line 199997\nline 199998\nline 199999\n");
  t = vigil::tail_lines(p, 1'000'000'000, 4096);
  CHECK(t.truncated);
  CHECK(t.text.size() <= 4096);
  CHECK(t.text.size() > 4000);
  CHECK(t.text.rfind("line ", 0) == 0);  // starts at a line boundary
  CHECK(t.text.substr(t.text.size() - 12) == "line 199999\n");
  // One line longer than the bound: its end.
  std::ofstream(p) << std::string(10'000, 'x') << "\n";
  t = vigil::tail_lines(p, 1, 100);
  CHECK(t.truncated);
  CHECK(t.text == std::string(99, 'x') + "\n");
}

namespace {
// Descriptors of this process open on files that have been deleted.
int deleted_files_open() {
  int n = 0;
  for (const auto& e : stdfs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = stdfs::read_symlink(e.path(), ec);
    if (!ec && target.string().find(" (deleted)") != std::string::npos) ++n;
  }
  return n;
}
}  // namespace

TEST_CASE("reaper: a dropped backup is gone at once, its storage freed by the reaper") {
  TempDir d;
  vigil::FileReaper reaper;
  LogFile f(d / "j.log", LogPolicy{10, 1, 0640});
  f.set_reaper(&reaper);
  for (const char* line : {"aaaaaaaa\n", "bbbbbbbb\n", "cccccccc\n"}) CHECK(f.write(line));
  // Two rotations with one backup: the first file was dropped through the reaper.
  CHECK(read(d / "j.log") == "cccccccc\n");
  CHECK(read(d / "j.log.1") == "bbbbbbbb\n");
  CHECK_FALSE(stdfs::exists(d / "j.log.2"));
  reaper.drain();
  CHECK(reaper.pending() == 0);
  CHECK(deleted_files_open() == 0);
}

TEST_CASE("reaper: removing what does not exist is fine, and beyond its bound it still frees") {
  TempDir d;
  vigil::FileReaper reaper;
  reaper.remove(d / "never-there");
  for (int i = 0; i < 20; ++i) {
    const std::string p = d / ("f" + std::to_string(i));
    std::ofstream(p) << "data";
    reaper.remove(p);
    CHECK_FALSE(stdfs::exists(p));
    CHECK(reaper.pending() <= vigil::FileReaper::kMaxPending + 1);
  }
  reaper.drain();
  CHECK(deleted_files_open() == 0);
}

TEST_CASE("line stamper: one stamp per line, partial lines keep their first stamp") {
  LineStamper s;
  std::string out;
  s.apply("one\ntw", "[1] ", out);
  s.apply("o\nthree\n", "[2] ", out);
  s.apply("", "[3] ", out);
  s.apply("four", "[4] ", out);
  CHECK(out == "[1] one\n[1] two\n[2] three\n[4] four");
}

TEST_CASE("stamp prefix is RFC 3339 UTC with milliseconds") {
  struct timespec ts {1'795'321'210, 327'999'999};
  CHECK(LineStamper::prefix(ts) == "2026-11-22T04:20:10.327Z ");
}

namespace {
// The descriptor of this process that is open on `path`, or -1.
int fd_open_on(const std::string& path) {
  for (const auto& e : stdfs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    if (stdfs::read_symlink(e.path(), ec) == path) return std::stoi(e.path().filename());
  }
  return -1;
}
}  // namespace

TEST_CASE("log files and other long-lived descriptors are kept apart from the low ones") {
  TempDir d;
  const std::string p = d / "j.log";
  vigil::fs::set_long_lived_fd_base(8192);  // room apart: the base is 2048
  {
    LogFile f(p, LogPolicy{16, 1});
    REQUIRE(f.write("one\n"));
    CHECK(fd_open_on(p) >= 2048);
    f.write("rotated away\n");  // reopened after a rotation: still apart
    CHECK(fd_open_on(p) >= 2048);
    CHECK(read(p) == "rotated away\n");
  }
  CHECK(fd_open_on(p) == -1);  // closed with the file, nothing left behind

  // A descriptor at or above the base stays; one that moves is still the same file.
  const int low = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(low >= 0);
  REQUIRE(low < 2048);
  const int high = vigil::fs::keep_long_lived(low);
  CHECK(high >= 2048);
  CHECK(::fcntl(low, F_GETFD) == -1);                 // the low one is closed
  CHECK((::fcntl(high, F_GETFD) & FD_CLOEXEC) != 0);  // and the new one is close-on-exec
  CHECK(vigil::fs::keep_long_lived(high) == high);
  ::close(high);

  // With a small file limit there is half of it for the low ones.
  vigil::fs::set_long_lived_fd_base(64);
  const int fd = vigil::fs::keep_long_lived(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  CHECK(fd >= 32);
  ::close(fd);
  // Without a range (the default), descriptors stay where they are.
  vigil::fs::set_long_lived_fd_base(0);
  const int same = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  CHECK(vigil::fs::keep_long_lived(same) == same);
  ::close(same);
}

namespace {
// The size of this process's descriptor table (FDSize in /proc/self/status).
long fd_table_size() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("FDSize:", 0) == 0) return std::stol(line.substr(7));
  }
  return -1;
}
}  // namespace

TEST_CASE("the descriptor table is sized for the long-lived range at once") {
  vigil::fs::set_long_lived_fd_base(1 << 20);  // the base is 2048
  const long before = fd_table_size();
  REQUIRE(before > 0);
  REQUIRE(before < 2048 + 3000);
  const int lowest = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // the lowest free one
  ::close(lowest);
  vigil::fs::reserve_long_lived(3000);
  CHECK(fd_table_size() >= 2048 + 3000);
  // Nothing is left open for it: the next descriptor is the same lowest free one.
  const int next = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  CHECK(next == lowest);
  ::close(next);
  vigil::fs::set_long_lived_fd_base(0);
}
