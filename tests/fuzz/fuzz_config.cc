// libFuzzer target for the config loader: any bytes, loaded as the main config file, must
// give either a Config or located one-line diagnostics, never an exception or a crash;
// and load_from_string() and load() of the same bytes written to disk must agree.
//
// The loader resolves includes on the real filesystem. So that an input naming
// /dev/kmsg, a FIFO or /proc/*/* can neither block the run nor make it depend on the
// machine, open() and glob() are wrapped (-Wl,--wrap, see meson.build): outside a
// private sandbox folder they find nothing. The sandbox holds a few include files, so
// that includes, include loops and jobs defined in two files are reached too.
#include <fcntl.h>
#include <glob.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>

#include "loader.h"

namespace {

using vigil::config::Diagnostic;
using vigil::config::Environment;
using vigil::config::LoadResult;

// An invariant that does not hold is a bug: stop here so libFuzzer saves the input.
#define FUZZ_CHECK(condition)                                                               \
  do {                                                                                      \
    if (!(condition)) {                                                                     \
      std::fprintf(stderr, "fuzz_config: check failed: %s (%s:%d)\n", #condition, __FILE__, \
                   __LINE__);                                                               \
      __builtin_trap();                                                                     \
    }                                                                                       \
  } while (0)

// The sandbox folder, "" until LLVMFuzzerInitialize has made it.
std::string& sandbox() {
  static std::string dir;
  return dir;
}

// True when `path` names something inside the sandbox. ".." anywhere is refused, even
// escaped for glob ("\.\."), rather than reasoned about.
bool inside_sandbox(std::string_view path) {
  const std::string& dir = sandbox();
  if (dir.empty() || !path.starts_with(dir) || path.size() == dir.size() ||
      path[dir.size()] != '/') {
    return false;
  }
  std::string unescaped;
  for (char c : path) {
    if (c != '\\') unescaped += c;
  }
  return unescaped.find("..") == std::string::npos;
}

void write_file(const std::filesystem::path& path, std::string_view text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// Include files for the inputs to find, laid out like the unit tests' data
// (tests/data/config), so that the seeds copied from there reach them: conf.d/ with
// valid files and a nested include, and inc/ with a broken file, a job that the seeds
// define too, keys an included file may not have, a file that includes itself and one
// that includes the main file.
void populate_sandbox(const std::filesystem::path& dir) {
  // vigil.yaml, the main file, is written for each input.
  write_file(dir / "conf.d/10-cache.yaml",
             "include: nested/*.yaml\njobs:\n  cache:\n    command: [redis-server, --port, "
             "\"6380\"]\n    cwd: .\n");
  write_file(dir / "conf.d/20-db.yaml",
             "jobs:\n  db:\n    command: postgres -D data\n    stderr: db.err.log\n");
  write_file(dir / "conf.d/nested/queue.yaml",
             "jobs:\n  queue:\n    command: [/usr/bin/queue]\n    cwd: ../..\n    env: {A: "
             "'${HOME}'}\n");
  write_file(dir / "inc/broken.yaml", "jobs:\n  x: [unclosed\n");
  write_file(dir / "inc/dup.yaml", "jobs:\n  web:\n    command: /bin/true\n");
  write_file(dir / "inc/forbidden.yaml", "supervisor: {}\nfoo: 1\n");
  write_file(dir / "inc/loop.yaml", "include: loop.yaml\njobs: {}\n");
  write_file(dir / "inc/main.yaml", "include: ../vigil.yaml\n");
}

// Set by FUZZ_CONFIG_VERBOSE=1: print what the loader said about each input, to see what
// a seed or a crashing input reaches.
bool& verbose() {
  static bool on = false;
  return on;
}

void remove_sandbox() {
  if (!sandbox().empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(sandbox(), ignored);
  }
}

Environment fuzz_env() {
  static const std::map<std::string, std::string, std::less<>> vars = {
      {"HOME", "/home/fuzz"}, {"VIGIL_TEST_DIR", "/srv/test"},       {"VIGIL_TEST_EMPTY", ""},
      {"CONF", "conf.d"},     {"XDG_RUNTIME_DIR", "/run/user/1000"},
  };
  Environment env;
  env.getenv = [](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  env.uid = 0;
  env.check_accounts = false;
  return env;
}

void check_diagnostic(const Diagnostic& d, const std::string& main_path) {
  const std::string text = d.str();
  FUZZ_CHECK(!text.empty());
  FUZZ_CHECK(text.find('\n') == std::string::npos);
  FUZZ_CHECK(text.find('\r') == std::string::npos);
  FUZZ_CHECK(!d.message.empty());
  // Every message names its file: the main file, or an include (inside the sandbox,
  // since the main file is).
  FUZZ_CHECK(d.where.file == main_path || d.where.file.starts_with(sandbox() + "/"));
  FUZZ_CHECK(text.starts_with(d.where.file + (d.where.line > 0 ? ":" : ": ")));
  FUZZ_CHECK(d.where.line >= 0 && d.where.column >= 0);
  FUZZ_CHECK((d.where.line == 0) == (d.where.column == 0));
  // The loader's last-resort catch (an exception escaped the code that should have
  // turned it into a located diagnostic) says this, without a position. (Other messages
  // may quote the input, which may hold the same words.)
  FUZZ_CHECK(!(d.where.line == 0 && d.message.starts_with("internal error while loading")));
}

}  // namespace

// The link-time wrappers (-Wl,--wrap=...): the loader's calls to open() and glob() come
// here. meson builds with _FILE_OFFSET_BITS=64, which makes them open64() and glob64();
// both spellings are wrapped so that neither slips through.
extern "C" {
int __real_open(const char* path, int flags, ...);
int __real_open64(const char* path, int flags, ...);
int __real_glob(const char* pattern, int flags, int (*errfunc)(const char*, int), glob_t* pglob);
int __real_glob64(const char* pattern, int flags, int (*errfunc)(const char*, int), void* pglob);

namespace {

mode_t mode_argument(int flags, va_list args) {
  if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
    return static_cast<mode_t>(va_arg(args, int));
  }
  return 0;
}

}  // namespace

// Both spellings of open: outside the sandbox a path does not exist.
static int sandboxed_open(int (*real)(const char*, int, ...), const char* path, int flags,
                          mode_t mode) {
  if (!inside_sandbox(path)) {
    errno = ENOENT;
    return -1;
  }
  return real(path, flags, mode);
}

int __wrap_open(const char* path, int flags, ...) {
  va_list args;
  va_start(args, flags);
  const mode_t mode = mode_argument(flags, args);
  va_end(args);
  return sandboxed_open(__real_open, path, flags, mode);
}

int __wrap_open64(const char* path, int flags, ...) {
  va_list args;
  va_start(args, flags);
  const mode_t mode = mode_argument(flags, args);
  va_end(args);
  return sandboxed_open(__real_open64, path, flags, mode);
}

// A glob_t left as the caller made it is what glob() leaves on GLOB_NOMATCH for a caller
// that zero-initialized it, as the loader does.
int __wrap_glob(const char* pattern, int flags, int (*errfunc)(const char*, int), glob_t* pglob) {
  if (!inside_sandbox(pattern)) return GLOB_NOMATCH;
  return __real_glob(pattern, flags, errfunc, pglob);
}

int __wrap_glob64(const char* pattern, int flags, int (*errfunc)(const char*, int), void* pglob) {
  if (!inside_sandbox(pattern)) return GLOB_NOMATCH;
  return __real_glob64(pattern, flags, errfunc, pglob);
}

int LLVMFuzzerInitialize(int*, char***) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/vigil-fuzz-config-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    std::perror("fuzz_config: mkdtemp");
    std::abort();
  }
  // Made canonical, so that the loader's absolute paths start with it.
  sandbox() = std::filesystem::canonical(pattern).string();
  populate_sandbox(sandbox());
  std::atexit(remove_sandbox);
  verbose() = std::getenv("FUZZ_CONFIG_VERBOSE") != nullptr;
  return 0;
}

int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string main_path = sandbox() + "/vigil.yaml";
  // On disk too, for load() below (and for includes of the main file).
  std::ofstream(main_path, std::ios::binary | std::ios::trunc) << text;
  LoadResult result, from_file;
  try {
    result = vigil::config::load_from_string(text, main_path, fuzz_env());
    from_file = vigil::config::load(main_path, fuzz_env());
  } catch (...) {
    FUZZ_CHECK(false && "the loader threw");
  }

  if (verbose()) {
    for (const Diagnostic& d : result.errors) std::fprintf(stderr, "  %s\n", d.str().c_str());
    if (result.config) {
      for (const auto& job : result.config->jobs) {
        std::fprintf(stderr, "  job %s (%s)\n", job.name.c_str(), job.defined_at.file.c_str());
      }
    }
  }

  FUZZ_CHECK(result.ok() == result.errors.empty());
  FUZZ_CHECK(result.config.has_value() == result.errors.empty());
  for (const Diagnostic& d : result.errors) check_diagnostic(d, main_path);

  // The fuzzer drives load_from_string; vigild calls load(). They must agree.
  FUZZ_CHECK(from_file.errors.size() == result.errors.size());
  for (std::size_t i = 0; i < result.errors.size(); ++i) {
    FUZZ_CHECK(from_file.errors[i].str() == result.errors[i].str());
  }
  FUZZ_CHECK(from_file.ok() == result.ok());

  if (result.ok()) {
    const vigil::config::Config& config = *result.config;
    FUZZ_CHECK(config.files == from_file.config->files);
    FUZZ_CHECK(config.jobs.size() == from_file.config->jobs.size());
    for (std::size_t i = 0; i < config.jobs.size(); ++i) {
      FUZZ_CHECK(config.jobs[i].same_definition(from_file.config->jobs[i]));
    }
    FUZZ_CHECK(config.path == main_path);
    FUZZ_CHECK(!config.files.empty() && config.files.front() == main_path);
    for (const vigil::config::JobSpec& job : config.jobs) {
      FUZZ_CHECK(!job.name.empty());
      FUZZ_CHECK(!job.argv.empty());
      FUZZ_CHECK(!job.argv.front().empty());
      FUZZ_CHECK(!job.shell || (job.argv.size() == 3 && job.argv[0] == "/bin/sh"));
      FUZZ_CHECK(job.cwd.starts_with("/"));
    }
  }
  return 0;
}
}
