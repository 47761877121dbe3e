// Golden-file tests of the config loader: every tests/data/config/bad/*.yaml must fail
// with exactly the diagnostics in the .expected file beside it, and every
// tests/data/config/good/*.yaml must load cleanly. Run with VIGIL_UPDATE_EXPECTED=1 to
// rewrite the .expected files after a deliberate change of wording (then review the diff).
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "loader.h"

namespace fs = std::filesystem;
using namespace vigil::config;

namespace {

// The environment the corpus is written against: root (so user: and group: are not
// "needs root" errors), no account look-ups, a few known variables.
Environment corpus_env() {
  static const std::map<std::string, std::string> vars = {
      {"HOME", "/home/tester"},
      {"VIGIL_TEST_DIR", "/srv/test"},
      {"VIGIL_TEST_EMPTY", ""},
  };
  Environment env;
  env.getenv = [](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  env.uid = 0;
  env.check_accounts = false;
  return env;
}

// Loads with the corpus folder as the current directory, so the paths in messages are
// as short as a user's would be ("x.yaml:3:5: ...") and the .expected files do not
// depend on where the checkout lives.
class InDirectory {
 public:
  explicit InDirectory(const fs::path& dir) : saved_(fs::current_path()) { fs::current_path(dir); }
  ~InDirectory() { fs::current_path(saved_); }
  InDirectory(const InDirectory&) = delete;
  InDirectory& operator=(const InDirectory&) = delete;

 private:
  fs::path saved_;
};

std::vector<fs::path> yaml_files(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".yaml") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string render(const LoadResult& result) {
  std::string out;
  for (const Diagnostic& d : result.errors) out += d.str() + "\n";
  return out;
}

}  // namespace

TEST_CASE("corpus: every bad config fails with exactly the expected diagnostics") {
  const fs::path dir = fs::path(VIGIL_TEST_DATA) / "config" / "bad";
  const bool update = std::getenv("VIGIL_UPDATE_EXPECTED") != nullptr;
  const std::vector<fs::path> files = yaml_files(dir);
  CHECK(files.size() >= 30);
  InDirectory in(dir);
  for (const fs::path& file : files) {
    const std::string name = file.filename().string();
    CAPTURE(name);
    const LoadResult result = load(name, corpus_env());
    CHECK_FALSE(result.ok());
    CHECK_FALSE(result.config.has_value());
    const std::string actual = render(result);
    const fs::path expected_path = fs::path(file).replace_extension(".expected");
    if (update) {
      std::ofstream(expected_path, std::ios::binary) << actual;
      continue;
    }
    REQUIRE_MESSAGE(fs::exists(expected_path), "missing " << expected_path.string());
    CHECK(actual == read_all(expected_path));
  }
}

TEST_CASE("corpus: every .expected file has its .yaml") {
  const fs::path dir = fs::path(VIGIL_TEST_DATA) / "config" / "bad";
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".expected") continue;
    CAPTURE(entry.path().string());
    CHECK(fs::exists(fs::path(entry.path()).replace_extension(".yaml")));
  }
}

TEST_CASE("corpus: every good config loads cleanly") {
  const fs::path dir = fs::path(VIGIL_TEST_DATA) / "config" / "good";
  const std::vector<fs::path> files = yaml_files(dir);
  CHECK(files.size() >= 5);
  InDirectory in(dir);
  for (const fs::path& file : files) {
    const std::string name = file.filename().string();
    CAPTURE(name);
    const LoadResult result = load(name, corpus_env());
    CHECK(render(result) == "");
    CHECK(result.ok());
  }
}

TEST_CASE("corpus: loading from memory matches loading the file") {
  // load_from_string is what the fuzzer drives; it must agree with load().
  const fs::path dir = fs::path(VIGIL_TEST_DATA) / "config" / "bad";
  InDirectory in(dir);
  for (const fs::path& file : yaml_files(dir)) {
    const std::string name = file.filename().string();
    CAPTURE(name);
    CHECK(render(load_from_string(read_all(file), name, corpus_env())) ==
          render(load(name, corpus_env())));
  }
}
