// Unit tests of config loading (config/loader.h): a full config checked field by field,
// defaults, relative paths, commands, env, accounts, includes, and the exact text of
// the diagnostics, including the examples the user-facing contract gives.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "loader.h"

namespace fs = std::filesystem;
using namespace vigil::config;
using namespace std::chrono_literals;

namespace {

Environment fake_env(std::map<std::string, std::string> vars = {}, uid_t uid = 0) {
  Environment env;
  env.getenv = [vars](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  env.uid = uid;
  env.check_accounts = false;
  return env;
}

Environment test_env() {
  return fake_env({{"HOME", "/home/tester"}, {"VIGIL_TEST_DIR", "/srv/test"}});
}

std::string render(const LoadResult& result) {
  std::string out;
  for (const Diagnostic& d : result.errors) out += d.str() + "\n";
  return out;
}

// Loads `text` as /etc/vigil/vigil.yaml (no includes touch the disk unless asked).
LoadResult from(const std::string& text, const Environment& env = test_env()) {
  return load_from_string(text, "/etc/vigil/vigil.yaml", env);
}

// Loads `text` and returns its single job, failing the test if it does not load.
JobSpec one_job(const std::string& text, const Environment& env = test_env()) {
  const LoadResult result = from(text, env);
  INFO(render(result));
  REQUIRE(result.ok());
  REQUIRE(result.config->jobs.size() == 1);
  return result.config->jobs.front();
}

// The diagnostics of loading `text` as "vigil.yaml" from the current directory.
std::string errors_of(const std::string& text, const Environment& env = test_env()) {
  const LoadResult result = load_from_string(text, "vigil.yaml", env);
  CHECK_FALSE(result.config.has_value());
  return render(result);
}

// A scratch folder for include tests, removed afterwards; also the current directory
// while it exists, so that messages show short relative paths.
class TempDir {
 public:
  TempDir() : saved_(fs::current_path()) {
    std::string pattern = (fs::temp_directory_path() / "vigil-config-test-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
    fs::current_path(path_);
  }
  ~TempDir() {
    fs::current_path(saved_);
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }

  void write(const std::string& name, const std::string& text) const {
    const fs::path file = path_ / name;
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << text;
  }

 private:
  fs::path saved_;
  fs::path path_;
};

std::vector<std::string> job_names(const Config& config) {
  std::vector<std::string> names;
  for (const JobSpec& job : config.jobs) names.push_back(job.name);
  return names;
}

const std::string kGood = std::string(VIGIL_TEST_DATA) + "/config/good";

}  // namespace

TEST_CASE("a full config: every key, checked field by field") {
  const std::string path = kGood + "/full.yaml";
  const LoadResult result = load(path, test_env());
  INFO(render(result));
  REQUIRE(result.ok());
  const Config& config = *result.config;
  CHECK(config.path == path);
  CHECK(config.files == std::vector<std::string>{path, kGood + "/conf.d/10-cache.yaml",
                                                 kGood + "/conf.d/nested/queue.yaml",
                                                 kGood + "/conf.d/20-db.yaml"});

  const SupervisorSpec& sup = config.supervisor;
  CHECK(sup.socket == kGood + "/run/vigil.sock");
  CHECK(sup.socket_mode == 0660);
  CHECK(sup.socket_group == "adm");
  CHECK(sup.pidfile == "/run/vigil/test.pid");
  CHECK(sup.log == "/srv/test/vigild.log");
  CHECK(sup.log_dir == kGood + "/logs");
  CHECK(sup.umask == 0027);
  CHECK(sup.shutdown_timeout == 45s);
  CHECK(sup.include == std::vector<std::string>{"conf.d/*.yaml"});

  // Main file first, then includes in sorted order, each followed by its own includes.
  REQUIRE(job_names(config) == std::vector<std::string>{"web", "worker", "cache", "queue", "db"});

  const JobSpec& web = config.jobs[0];
  CHECK(web.argv == std::vector<std::string>{"/usr/bin/python3", "-m", "http.server", "8000"});
  CHECK_FALSE(web.shell);
  CHECK(web.cwd == "/srv/test/web");
  CHECK(web.umask == mode_t{0007});
  CHECK(web.env == std::vector<std::pair<std::string, std::string>>{{"PORT", "8000"},
                                                                    {"DEBUG", "true"},
                                                                    {"HOME_COPY", "/home/tester"},
                                                                    {"LITERAL", "$HOME and $PATH"},
                                                                    {"DEFAULTED", "fallback"}});
  CHECK(web.user == "www-data");
  CHECK(web.group == "www-data");
  CHECK(web.stdout_log == Output{Output::Kind::file, kGood + "/web/out.log"});
  CHECK(web.stderr_log == Output{Output::Kind::merge, ""});
  CHECK(web.log_max_size == 2 * 1024 * 1024);
  CHECK(web.log_backups == 0);
  CHECK(web.log_timestamps);
  CHECK_FALSE(web.autostart);
  CHECK(web.restart == RestartPolicy::always);
  CHECK(web.success_exit_codes == std::vector<int>{0, 2});
  CHECK(web.start_seconds == 2500ms);
  CHECK(web.start_retries == 0);
  CHECK(web.backoff == Backoff{250ms, 90s, 1.5});
  CHECK(web.stop_signal == 2);
  CHECK(web.stop_timeout == 60s);
  CHECK_FALSE(web.kill_group);
  CHECK(web.defined_at == Location{path, 15, 3});

  const JobSpec& worker = config.jobs[1];
  CHECK(worker.argv ==
        std::vector<std::string>{"/bin/sh", "-c", "exec ./worker --queue \"default\""});
  CHECK(worker.shell);
  CHECK(worker.stdout_log == Output{Output::Kind::discard, ""});
  CHECK(worker.stderr_log == Output{Output::Kind::discard, ""});
  CHECK(worker.success_exit_codes == std::vector<int>{3});
  CHECK(worker.restart == RestartPolicy::never);
  CHECK(worker.stop_signal == 1);
  // Everything not given keeps its default.
  CHECK(worker.cwd == "/");
  CHECK_FALSE(worker.umask.has_value());
  CHECK(worker.env.empty());
  CHECK_FALSE(worker.user.has_value());
  CHECK_FALSE(worker.group.has_value());
  CHECK(worker.log_max_size == 10 * 1024 * 1024);
  CHECK(worker.log_backups == 5);
  CHECK_FALSE(worker.log_timestamps);
  CHECK(worker.autostart);
  CHECK(worker.start_seconds == 1s);
  CHECK(worker.start_retries == 3);
  CHECK(worker.backoff == Backoff{1s, 60s, 2.0});
  CHECK(worker.stop_timeout == 10s);
  CHECK(worker.kill_group);

  // Paths in included files are relative to the included file's folder.
  const JobSpec& cache = config.jobs[2];
  CHECK(cache.cwd == kGood + "/conf.d");
  CHECK(cache.stdout_log == Output{Output::Kind::file, kGood + "/logs/cache.out.log"});
  CHECK(cache.stderr_log == Output{Output::Kind::file, kGood + "/logs/cache.err.log"});
  CHECK(cache.defined_at == Location{kGood + "/conf.d/10-cache.yaml", 4, 3});
  const JobSpec& queue = config.jobs[3];
  CHECK(queue.cwd == kGood);
  CHECK(queue.defined_at.file == kGood + "/conf.d/nested/queue.yaml");
  const JobSpec& db = config.jobs[4];
  CHECK(db.argv == std::vector<std::string>{"/bin/sh", "-c", "postgres -D data"});
  CHECK(db.stderr_log == Output{Output::Kind::file, kGood + "/conf.d/db.err.log"});
}

TEST_CASE("an empty file, or one with only comments, is a config with no jobs") {
  for (const char* text : {"", "# nothing\n", "\n\n", "---\n", "supervisor:\njobs:\n"}) {
    CAPTURE(text);
    const LoadResult result = from(text);
    INFO(render(result));
    REQUIRE(result.ok());
    CHECK(result.config->jobs.empty());
    CHECK(result.config->supervisor.socket == "/run/vigil/vigil.sock");
    CHECK(result.config->files == std::vector<std::string>{"/etc/vigil/vigil.yaml"});
  }
}

TEST_CASE("job defaults follow the supervisor's log_dir, for root and for others") {
  const std::string text = "jobs:\n  web:\n    command: /bin/true\n";
  const JobSpec root = one_job(text);
  CHECK(root.stdout_log == Output{Output::Kind::file, "/var/log/vigil/web.out.log"});
  CHECK(root.stderr_log == Output{Output::Kind::file, "/var/log/vigil/web.err.log"});

  const JobSpec user = one_job(text, fake_env({{"HOME", "/home/me"}}, 1000));
  CHECK(user.stdout_log == Output{Output::Kind::file, "/home/me/.local/state/vigil/web.out.log"});
  CHECK(user.stderr_log == Output{Output::Kind::file, "/home/me/.local/state/vigil/web.err.log"});

  // log_dir may come after the jobs in the file; the defaults use the final value.
  const JobSpec later = one_job(text + "supervisor:\n  log_dir: /logs\n");
  CHECK(later.stdout_log.path == "/logs/web.out.log");
}

TEST_CASE("relative paths resolve against the folder of the file they are in") {
  const LoadResult result = from(
      "supervisor:\n"
      "  socket: ./run//vigil.sock\n"
      "  pidfile: ../run/vigild.pid\n"
      "  log: log/../vigild.log\n"
      "  log_dir: logs/\n"
      "jobs:\n"
      "  web:\n"
      "    command: [bin/web]\n"  // argv is not a path: it stays as written
      "    cwd: srv/web/.\n"
      "    stdout: out.log\n"
      "    stderr: /abs//err.log\n");
  INFO(render(result));
  REQUIRE(result.ok());
  const SupervisorSpec& sup = result.config->supervisor;
  CHECK(sup.socket == "/etc/vigil/run/vigil.sock");
  CHECK(sup.pidfile == "/etc/run/vigild.pid");
  CHECK(sup.log == "/etc/vigil/vigild.log");
  CHECK(sup.log_dir == "/etc/vigil/logs");
  const JobSpec& web = result.config->jobs.front();
  CHECK(web.argv == std::vector<std::string>{"bin/web"});
  CHECK(web.cwd == "/etc/vigil/srv/web");
  CHECK(web.stdout_log.path == "/etc/vigil/out.log");
  CHECK(web.stderr_log.path == "/abs/err.log");
}

TEST_CASE("a relative main path is made absolute against the current directory") {
  TempDir dir;
  dir.write("sub/vigil.yaml", "jobs:\n  web:\n    command: x\n    cwd: data\n");
  const LoadResult result = load("sub/vigil.yaml", test_env());
  INFO(render(result));
  REQUIRE(result.ok());
  CHECK(result.config->path == (dir.path() / "sub/vigil.yaml").string());
  CHECK(result.config->jobs.front().cwd == (dir.path() / "sub/data").string());
  CHECK(result.config->jobs.front().defined_at == Location{"sub/vigil.yaml", 2, 3});
}

TEST_CASE("command: a list is argv, a string runs under /bin/sh -c") {
  JobSpec job = one_job("jobs:\n  a:\n    command: [/bin/echo, 1, true, '', \"two words\"]\n");
  CHECK(job.argv == std::vector<std::string>{"/bin/echo", "1", "true", "", "two words"});
  CHECK_FALSE(job.shell);

  job = one_job("jobs:\n  a:\n    command: echo $HOME && exit 3\n");
  CHECK(job.argv == std::vector<std::string>{"/bin/sh", "-c", "echo $HOME && exit 3"});
  CHECK(job.shell);

  job = one_job("jobs:\n  a:\n    command: |\n      set -e\n      run\n");
  CHECK(job.argv == std::vector<std::string>{"/bin/sh", "-c", "set -e\nrun\n"});

  job = one_job("jobs:\n  a:\n    command: [\"${VIGIL_TEST_DIR}/bin/app\", \"--x=${HOME}\"]\n");
  CHECK(job.argv == std::vector<std::string>{"/srv/test/bin/app", "--x=/home/tester"});
  job = one_job("jobs:\n  a:\n    command: exec ${VIGIL_TEST_DIR}/app $$1\n");
  CHECK(job.argv == std::vector<std::string>{"/bin/sh", "-c", "exec /srv/test/app $1"});
}

TEST_CASE("env: in file order, scalars as text, values expanded") {
  const JobSpec job = one_job(
      "jobs:\n  a:\n    command: x\n    env:\n"
      "      Z: last?\n"
      "      A: 1\n"
      "      B: 1.50\n"
      "      C: false\n"
      "      D: ''\n"
      "      _E1: ${HOME}/x\n"
      "      F: '0600'\n");
  CHECK(job.env == std::vector<std::pair<std::string, std::string>>{{"Z", "last?"},
                                                                    {"A", "1"},
                                                                    {"B", "1.50"},
                                                                    {"C", "false"},
                                                                    {"D", ""},
                                                                    {"_E1", "/home/tester/x"},
                                                                    {"F", "0600"}});
}

TEST_CASE("stdout and stderr: files, null, merge") {
  JobSpec job = one_job("jobs:\n  a:\n    command: x\n    stdout: null\n    stderr: \"null\"\n");
  CHECK(job.stdout_log.kind == Output::Kind::discard);
  CHECK(job.stderr_log.kind == Output::Kind::discard);
  job = one_job("jobs:\n  a:\n    command: x\n    stdout: ~\n    stderr: stdout\n");
  CHECK(job.stdout_log.kind == Output::Kind::discard);
  CHECK(job.stderr_log.kind == Output::Kind::merge);
  job = one_job("jobs:\n  a:\n    command: x\n    stdout: ./null\n    stderr: ./stdout\n");
  CHECK(job.stdout_log == Output{Output::Kind::file, "/etc/vigil/null"});
  CHECK(job.stderr_log == Output{Output::Kind::file, "/etc/vigil/stdout"});
  // Both streams to /dev/null as files is harmless.
  job = one_job("jobs:\n  a:\n    command: x\n    stdout: /dev/null\n    stderr: /dev/null\n");
  CHECK(job.stderr_log.path == "/dev/null");
}

TEST_CASE("values in the forms YAML users write") {
  const JobSpec job = one_job(
      "jobs:\n  a:\n    command: x\n"
      "    umask: 0600\n"  // unquoted: yaml-cpp keeps the text "0600"
      "    log_max_size: 1048576\n"
      "    start_seconds: 0\n"
      "    stop_timeout: 1.5\n"
      "    start_retries: '7'\n"
      "    stop_signal: 9\n"
      "    autostart: True\n"
      "    backoff: {factor: 1}\n"
      "    success_exit_codes: [0, 1, 143]\n"
      "    restart: on-failure\n");
  CHECK(job.umask == mode_t{0600});
  CHECK(job.log_max_size == 1048576);
  CHECK(job.start_seconds == 0ms);
  CHECK(job.stop_timeout == 1500ms);
  CHECK(job.start_retries == 7);
  CHECK(job.stop_signal == 9);
  CHECK(job.autostart);
  CHECK(job.backoff.factor == 1.0);
  CHECK(job.success_exit_codes == std::vector<int>{0, 1, 143});
  CHECK(job.restart == RestartPolicy::on_failure);
}

TEST_CASE("the contract's example messages, exactly") {
  CHECK(errors_of("jobs:\n  web:\n    command: x\n    umask: \"0999\"\n") ==
        "vigil.yaml:4:12: jobs.web.umask: \"0999\" is not an octal mode\n");
  CHECK(errors_of("jobs:\n  web:\n    comand: x\n") ==
        "vigil.yaml:2:3: jobs.web: no command given (expected command: with a list of strings, "
        "or a string run by /bin/sh -c)\n"
        "vigil.yaml:3:5: jobs.web: unknown key \"comand\" (did you mean \"command\"?)\n");
  CHECK(errors_of("jobs:\n  web:\n    command: x\n    autostart: maybe\n") ==
        "vigil.yaml:4:16: jobs.web.autostart: expected true or false, got \"maybe\"\n");
  CHECK(errors_of("jobs:\n\n\n  web:\n    command: x\n    start_seconds: 10 parsecs\n") ==
        "vigil.yaml:6:20: jobs.web.start_seconds: \"10 parsecs\" is not a duration (expected "
        "seconds, or a number with ms, s, m or h)\n");
  CHECK(errors_of("jobs:\n  web:\n    command: x\n    frobnicate: 1\n") ==
        "vigil.yaml:4:5: jobs.web: unknown key \"frobnicate\"\n");
  CHECK(errors_of("jobs:\n  a:\n    command: x\n\n\n\n]\n") ==
        "vigil.yaml:7:1: YAML syntax error: illegal flow end\n");

  TempDir dir;
  dir.write("vigil.yaml",
            "supervisor:\n  include: conf.d/*.yaml\njobs:\n  # web serves the site\n  web:\n"
            "    command: x\n");
  dir.write("conf.d/b.yaml", "jobs:\n  web:\n    command: y\n");
  CHECK(render(load("vigil.yaml", test_env())) ==
        "conf.d/b.yaml:2:3: jobs.web: defined twice (first at vigil.yaml:5:3)\n");
  CHECK(render(load("missing.yaml", test_env())) ==
        "missing.yaml: cannot read: No such file or directory\n");
}

TEST_CASE("every problem is reported in one pass, in file order") {
  const std::string errors = errors_of(
      "jobs:\n"
      "  b:\n"
      "    umask: '9'\n"
      "    autostart: 2\n"
      "  a:\n"
      "    command: []\n"
      "supervisor:\n"
      "  socket_mode: x\n"
      "  unknown: 1\n");
  CHECK(errors ==
        "vigil.yaml:2:3: jobs.b: no command given (expected command: with a list of strings, or a "
        "string run by /bin/sh -c)\n"
        "vigil.yaml:3:12: jobs.b.umask: \"9\" is not an octal mode\n"
        "vigil.yaml:4:16: jobs.b.autostart: expected true or false, got \"2\"\n"
        "vigil.yaml:6:14: jobs.a.command: expected a non-empty list of strings, got an empty list\n"
        "vigil.yaml:8:16: supervisor.socket_mode: \"x\" is not an octal mode\n"
        "vigil.yaml:9:3: supervisor: unknown key \"unknown\"\n");
}

TEST_CASE("a bad config never half-loads") {
  const LoadResult result = from("jobs:\n  good:\n    command: x\n  bad:\n    command: []\n");
  CHECK_FALSE(result.ok());
  CHECK_FALSE(result.config.has_value());
  CHECK(result.errors.size() == 1);
}

TEST_CASE("user and group need root unless they are the current user's") {
  const std::string text =
      "jobs:\n  web:\n    command: x\n    user: www-data\n    group: www-data\n";
  CHECK(render(load_from_string(text, "vigil.yaml", fake_env({}, 1000))) ==
        "vigil.yaml:4:11: jobs.web.user: running a job as \"www-data\" needs vigild to run as "
        "root\n"
        "vigil.yaml:5:12: jobs.web.group: running a job with group \"www-data\" needs vigild to "
        "run as root\n");
  // Naming yourself is fine: by name (nobody/nogroup exist on Debian) or by number.
  CHECK(render(from("jobs:\n  web:\n    command: x\n    user: nobody\n    group: nogroup\n",
                    fake_env({}, 65534))) == "");
  CHECK(render(from("jobs:\n  web:\n    command: x\n    user: 1000\n", fake_env({}, 1000))) == "");
  CHECK(render(from("jobs:\n  web:\n    command: x\n    user: 1001\n", fake_env({}, 1000))) ==
        "/etc/vigil/vigil.yaml:4:11: jobs.web.user: running a job as \"1001\" needs vigild to "
        "run as root\n");
}

TEST_CASE("with check_accounts, user and group names must exist") {
  Environment env = fake_env();
  env.check_accounts = true;
  CHECK(render(load_from_string("supervisor:\n  socket_group: adm\n"
                                "jobs:\n"
                                "  a: {command: x, user: root, group: root}\n"
                                "  b: {command: x, user: nobody, group: nogroup}\n"
                                "  c: {command: x, user: 12345, group: 54321}\n",
                                "vigil.yaml", env)) == "");
  CHECK(render(load_from_string("supervisor:\n  socket_group: vigil-no-such-group\n"
                                "jobs:\n"
                                "  a: {command: x, user: vigil-no-such-user, group: nogroup}\n"
                                "  b: {command: x, group: vigil-no-such-group}\n",
                                "vigil.yaml", env)) ==
        "vigil.yaml:2:17: supervisor.socket_group: no group named \"vigil-no-such-group\" on "
        "this system (expected an existing group name or a numeric gid)\n"
        "vigil.yaml:4:25: jobs.a.user: no user named \"vigil-no-such-user\" on this system "
        "(expected an existing user name or a numeric uid)\n"
        "vigil.yaml:5:26: jobs.b.group: no group named \"vigil-no-such-group\" on this system "
        "(expected an existing group name or a numeric gid)\n");
  // Without the check, any name is accepted (tests, or a config for another machine).
  CHECK(render(load_from_string("jobs:\n  a: {command: x, user: vigil-no-such-user}\n",
                                "vigil.yaml", fake_env())) == "");
}

TEST_CASE("includes: glob matches load in byte order, after the including file's jobs") {
  TempDir dir;
  dir.write("vigil.yaml",
            "supervisor:\n  include: [\"conf.d/*.yaml\", \"${VIGIL_TEST_EXTRA}\"]\n"
            "jobs:\n  main: {command: x}\n");
  dir.write("conf.d/b.yaml", "jobs:\n  b: {command: x}\n");
  dir.write("conf.d/a.yaml", "jobs:\n  a: {command: x}\n");
  dir.write("conf.d/B.yaml", "jobs:\n  B: {command: x}\n");
  dir.write("conf.d/10.yaml", "jobs:\n  ten: {command: x}\n");
  dir.write("conf.d/2.yaml", "jobs:\n  two: {command: x}\n");
  dir.write("conf.d/.hidden.yaml", "jobs:\n  hidden: {command: x}\n");
  dir.write("conf.d/notes.txt", "not yaml");
  dir.write("extra/last.yaml", "jobs:\n  last: {command: x}\n");
  const std::string extra = (dir.path() / "extra/last.yaml").string();
  const LoadResult result = load("vigil.yaml", fake_env({{"VIGIL_TEST_EXTRA", extra}}));
  INFO(render(result));
  REQUIRE(result.ok());
  CHECK(job_names(*result.config) ==
        std::vector<std::string>{"main", "ten", "two", "B", "a", "b", "last"});
  CHECK(result.config->supervisor.include ==
        std::vector<std::string>{"conf.d/*.yaml", "${VIGIL_TEST_EXTRA}"});
  CHECK(result.config->files.size() == 7);
  // Absolute include patterns show as absolute paths.
  CHECK(result.config->jobs.back().defined_at == Location{extra, 2, 3});
  CHECK(result.config->jobs[1].defined_at == Location{"conf.d/10.yaml", 2, 3});
}

TEST_CASE("includes: a missing file is an error, an empty glob is not") {
  TempDir dir;
  dir.write("vigil.yaml",
            "supervisor:\n  include:\n    - empty.d/*.yaml\n    - conf.d/web.yaml\n"
            "    - conf.d\n");
  dir.write("empty.d/README", "nothing to see");
  dir.write("conf.d/other.yaml", "jobs: {}\n");
  CHECK(render(load("vigil.yaml", test_env())) ==
        "vigil.yaml:4:7: supervisor.include[1]: cannot read conf.d/web.yaml: No such file or "
        "directory\n"
        "vigil.yaml:5:7: supervisor.include[2]: cannot read conf.d: Is a directory\n");
}

TEST_CASE("includes: loops are reported with the chain") {
  TempDir dir;
  dir.write("vigil.yaml", "supervisor:\n  include: a.d/*.yaml\n");
  dir.write("a.d/a.yaml", "include: ../b.d/b.yaml\njobs:\n  a: {command: x}\n");
  dir.write("b.d/b.yaml", "include:\n  - ../vigil.yaml\njobs:\n  b: {command: x}\n");
  CHECK(render(load("vigil.yaml", test_env())) ==
        "b.d/b.yaml:2:5: include[0]: includes form a loop: vigil.yaml -> a.d/a.yaml -> "
        "b.d/b.yaml -> vigil.yaml\n");

  // A glob in the main file's own folder that matches the main file is a loop too.
  TempDir self;
  self.write("vigil.yaml", "supervisor:\n  include: \"*.yaml\"\n");
  self.write("web.yaml", "jobs:\n  web: {command: x}\n");
  CHECK(render(load("vigil.yaml", test_env())) ==
        "vigil.yaml:2:12: supervisor.include: includes form a loop: vigil.yaml -> vigil.yaml\n");
}

TEST_CASE("includes: a file reached twice is read once") {
  TempDir dir;
  dir.write("vigil.yaml", "supervisor:\n  include: [a.yaml, b.yaml, ./common.yaml]\n");
  dir.write("a.yaml", "include: common.yaml\njobs:\n  a: {command: x}\n");
  dir.write("b.yaml", "include: common.yaml\njobs:\n  b: {command: x}\n");
  dir.write("common.yaml", "jobs:\n  common: {command: x}\n");
  const LoadResult result = load("vigil.yaml", test_env());
  INFO(render(result));
  REQUIRE(result.ok());
  CHECK(job_names(*result.config) == std::vector<std::string>{"a", "common", "b"});
}

TEST_CASE("includes: duplicates across files name both places") {
  TempDir dir;
  dir.write("vigil.yaml", "supervisor:\n  include: conf.d/*.yaml\njobs:\n  web: {command: x}\n");
  dir.write("conf.d/1.yaml", "jobs:\n  db: {command: x}\n");
  dir.write("conf.d/2.yaml", "jobs:\n\n  db: {command: y}\n  web: {command: y}\n");
  CHECK(render(load("vigil.yaml", test_env())) ==
        "conf.d/2.yaml:3:3: jobs.db: defined twice (first at conf.d/1.yaml:2:3)\n"
        "conf.d/2.yaml:4:3: jobs.web: defined twice (first at vigil.yaml:4:3)\n");
}

TEST_CASE("includes: included files may hold only jobs: and include:") {
  TempDir dir;
  dir.write("vigil.yaml", "supervisor:\n  include: extra.yaml\n");
  dir.write("extra.yaml", "jobs: {}\nsupervisor:\n  umask: '077'\njbos: {}\nsettings: 1\n");
  CHECK(render(load("vigil.yaml", test_env())) ==
        "extra.yaml:2:1: supervisor: not allowed in an included file (expected only jobs: and "
        "include:)\n"
        "extra.yaml:4:1: unknown top-level key \"jbos\" (did you mean \"jobs\"?)\n"
        "extra.yaml:5:1: unknown top-level key \"settings\"\n");
}

TEST_CASE("includes: with an absolute main path, messages name absolute paths") {
  TempDir dir;
  dir.write("vigil.yaml", "supervisor:\n  include: conf.d/*.yaml\n");
  dir.write("conf.d/x.yaml", "jobs:\n  x: {command: x, autostart: no}\n");
  const std::string main = (dir.path() / "vigil.yaml").string();
  CHECK(render(load(main, test_env())) ==
        (dir.path() / "conf.d/x.yaml").string() +
            ":2:30: jobs.x.autostart: expected true or false, got \"no\"\n");
}

TEST_CASE("files that are too large are refused without parsing") {
  const std::string big(4 * 1024 * 1024 + 1, '#');
  CHECK(render(load_from_string(big, "big.yaml", test_env())) ==
        "big.yaml: too large for a config file (4194305 bytes; expected at most 4 MiB)\n");
  TempDir dir;
  dir.write("big.yaml", big);
  dir.write("vigil.yaml", "supervisor:\n  include: big.yaml\n");
  CHECK(render(load("big.yaml", test_env())) ==
        "big.yaml: too large for a config file (4194305 bytes; expected at most 4 MiB)\n");
  CHECK(render(load("vigil.yaml", test_env())) ==
        "big.yaml: too large for a config file (4194305 bytes; expected at most 4 MiB)\n");
  // Exactly 4 MiB is still read.
  CHECK(from(std::string(4 * 1024 * 1024, '#')).ok());
}

TEST_CASE("a folder or an empty path as the config file") {
  TempDir dir;
  CHECK(render(load(".", test_env())) == ".: cannot read: Is a directory\n");
  CHECK(render(load("", test_env())) == "no config file given (expected a path)\n");
}

namespace {

// Loads in another thread and gives up waiting after 10 s: a loader that blocks on a FIFO
// fails the test instead of hanging it (a writer comes and goes, to let each open go).
std::string load_promptly(const std::string& path, const fs::path& fifo) {
  auto pending = std::async(std::launch::async, [&] { return render(load(path, test_env())); });
  if (pending.wait_for(10s) != std::future_status::ready) {
    FAIL_CHECK("loading " << path << " blocked on the FIFO");
    do {
      close(open(fifo.c_str(), O_WRONLY | O_NONBLOCK));
    } while (pending.wait_for(100ms) != std::future_status::ready);
  }
  return pending.get();
}

}  // namespace

TEST_CASE("a FIFO as an include or as the config file is refused at once, not read") {
  TempDir dir;
  dir.write("conf.d/web.yaml", "jobs:\n  web: {command: x}\n");
  REQUIRE(mkfifo((dir.path() / "conf.d/pipe.yaml").c_str(), 0600) == 0);
  dir.write("vigil.yaml", "supervisor:\n  include: [conf.d/*.yaml, conf.d/pipe.yaml]\n");
  const fs::path fifo = dir.path() / "conf.d/pipe.yaml";
  const auto start = std::chrono::steady_clock::now();
  // Matched by a glob and named plainly: both are reported, and the other file is read.
  CHECK(load_promptly("vigil.yaml", fifo) ==
        "vigil.yaml:2:13: supervisor.include[0]: cannot read conf.d/pipe.yaml: not a regular "
        "file (a FIFO)\n"
        "vigil.yaml:2:28: supervisor.include[1]: cannot read conf.d/pipe.yaml: not a regular "
        "file (a FIFO)\n");
  CHECK(load_promptly("conf.d/pipe.yaml", fifo) ==
        "conf.d/pipe.yaml: cannot read: not a regular file (a FIFO)\n");
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  // Devices too; a symlink to a regular file is followed as before.
  CHECK(render(load("/dev/null", test_env())) ==
        "/dev/null: cannot read: not a regular file (a character device)\n");
  fs::create_symlink("conf.d/web.yaml", dir.path() / "link.yaml");
  const LoadResult linked = load("link.yaml", test_env());
  INFO(render(linked));
  CHECK(linked.ok());
}

TEST_CASE("the loader never throws, whatever the input") {
  // Every prefix of a real config, and a few hostile inputs: each must come back as
  // either a config or diagnostics, never as an exception or a crash.
  std::ifstream in(kGood + "/full.yaml");
  std::stringstream text;
  text << in.rdbuf();
  const std::string full = text.str();
  int loaded = 0, failed = 0;
  for (std::size_t n = 0; n <= full.size(); ++n) {
    LoadResult result;
    CHECK_NOTHROW(result =
                      load_from_string(full.substr(0, n), "/nonexistent/vigil.yaml", test_env()));
    CHECK(result.ok() == result.errors.empty());
    (result.ok() ? loaded : failed)++;
    for (const Diagnostic& d : result.errors) CHECK_FALSE(d.message.empty());
  }
  CHECK(loaded > 0);
  CHECK(failed > 0);
  for (const std::string& hostile :
       {std::string(100000, '['), std::string(100000, '{'), std::string("a: &a [*a]\n"),
        std::string("? ? ? ?\n"), std::string("*\n"), std::string("!!binary x\n"),
        std::string("jobs: !!map {a: !!seq [b]}\n"), std::string("%YAML 9.9\n---\njobs: {}\n"),
        std::string("jobs:\n  a:\n    command: \"\\u0000\"\n")}) {
    CAPTURE(hostile.substr(0, 40));
    CHECK_NOTHROW(load_from_string(hostile, "x.yaml", test_env()));
  }
}

TEST_CASE("a stray comma is a syntax error, not a hang") {
  // yaml-cpp 0.7's LoadAll loops forever, allocating, on these (yaml-cpp issue #1040).
  const std::string message =
      "YAML syntax error: unexpected \",\" (a comma separates items only inside [ ] or { })\n";
  CHECK(errors_of(",") == "vigil.yaml:1:1: " + message);
  CHECK(errors_of(", ,\n") == "vigil.yaml:1:1: " + message);
  CHECK(errors_of("... ,\n") == "vigil.yaml:1:5: " + message);
  CHECK(errors_of("[a]\n,\n") == "vigil.yaml:2:1: " + message);
}

TEST_CASE("a NUL written as an escape is refused where it would reach the kernel") {
  CHECK(errors_of("jobs:\n  a:\n    command: [\"/bin/echo\", \"a\\0b\"]\n") ==
        "vigil.yaml:3:28: jobs.a.command[1]: \"a\\x00b\" contains a NUL character (expected a "
        "string without one)\n");
}

TEST_CASE("merge keys: <<: *anchor brings in a mapping's keys; the job's own keys win") {
  const LoadResult result = from(
      "x-defaults: &defaults\n"
      "  restart: always\n"
      "  stop_timeout: 3s\n"
      "  env: {A: \"1\"}\n"
      "x-quiet: &quiet\n"
      "  stdout: null\n"
      "  restart: never\n"
      "jobs:\n"
      "  web:\n"
      "    <<: *defaults\n"
      "    command: /bin/web\n"
      "    stop_timeout: 5s\n"
      "  worker:\n"
      "    command: /bin/worker\n"
      "    <<: [*quiet, *defaults]\n"
      "  plain:\n"
      "    command: /bin/plain\n");
  INFO(render(result));
  REQUIRE(result.ok());
  const std::vector<JobSpec>& jobs = result.config->jobs;
  REQUIRE(jobs.size() == 3);
  // Explicit keys win over merged ones, wherever the << is written.
  CHECK(jobs[0].restart == RestartPolicy::always);
  CHECK(jobs[0].stop_timeout == 5s);
  CHECK(jobs[0].env == std::vector<std::pair<std::string, std::string>>{{"A", "1"}});
  // Of a list, the earlier mapping wins.
  CHECK(jobs[1].restart == RestartPolicy::never);
  CHECK(jobs[1].stdout_log.kind == Output::Kind::discard);
  CHECK(jobs[1].stop_timeout == 3s);
  CHECK(jobs[2].restart == RestartPolicy::on_failure);
  CHECK(jobs[2].stop_timeout == 10s);
}

TEST_CASE("merge keys: merged mappings may merge in turn, in any mapping") {
  const JobSpec job = one_job(
      "x-base: &base {stop_signal: INT, backoff: &fast {initial: 1s, max: 2s}}\n"
      "x-web: &web\n"
      "  <<: *base\n"
      "  stop_signal: QUIT\n"
      "  autostart: false\n"
      "jobs:\n"
      "  a:\n"
      "    <<: *web\n"
      "    command: x\n"
      "    backoff: {<<: *fast, factor: 3}\n");
  CHECK(job.stop_signal == 3);  // QUIT: the nearer mapping wins
  CHECK_FALSE(job.autostart);
  CHECK(job.backoff == Backoff{1000ms, 2000ms, 3.0});
}

TEST_CASE("merge keys: the order of the jobs is where the << is") {
  const LoadResult result = from(
      "x-more: &more\n"
      "  b: {command: b}\n"
      "  c: {command: c}\n"
      "jobs:\n"
      "  a: {command: a}\n"
      "  <<: *more\n"
      "  d: {command: d}\n"
      "  c: {command: own-c}\n");
  INFO(render(result));
  REQUIRE(result.ok());
  // c is the mapping's own, so it stays where it is written.
  CHECK(job_names(*result.config) == std::vector<std::string>{"a", "b", "d", "c"});
  CHECK(result.config->jobs[3].argv.back() == "own-c");
}

TEST_CASE("merge keys: errors point into the anchored mapping, with the merging key path") {
  CHECK(errors_of("x-defaults: &d\n"
                  "  restart: sometimes\n"
                  "  comand: x\n"
                  "jobs:\n"
                  "  web:\n"
                  "    <<: *d\n"
                  "    command: /bin/web\n") ==
        "vigil.yaml:2:12: jobs.web.restart: expected always, on-failure or never, got "
        "\"sometimes\"\n"
        "vigil.yaml:3:3: jobs.web: unknown key \"comand\" (did you mean \"command\"?)\n");
  CHECK(errors_of("jobs:\n  web:\n    command: x\n    <<: /bin/true\n") ==
        "vigil.yaml:4:9: jobs.web.<<: expected a mapping to merge (<<: *defaults) or a list of "
        "them, got \"/bin/true\"\n");
  CHECK(errors_of("jobs:\n  web:\n    command: x\n    <<: [{autostart: true}, [a]]\n") ==
        "vigil.yaml:4:29: jobs.web.<<[1]: expected a mapping to merge, such as *defaults, got a "
        "list\n");
  CHECK(errors_of("jobs:\n  web: &w\n    command: x\n    <<: *w\n") ==
        "vigil.yaml:4:5: jobs.web.<<: merges a mapping into itself (through its own anchor)\n");
  CHECK(errors_of("jobs:\n  web:\n    command: x\n    <<: {}\n    <<: {}\n") ==
        "vigil.yaml:5:5: jobs.web.<<: defined twice (first at vigil.yaml:4:5; to merge several "
        "mappings write <<: [*a, *b])\n");
  // A quoted "<<" is a key like any other.
  CHECK(errors_of("jobs:\n  web:\n    command: x\n    \"<<\": {}\n") ==
        "vigil.yaml:4:5: jobs.web: unknown key \"<<\"\n");
}

TEST_CASE("merge keys: merges of merges cannot multiply without bound") {
  // Each level merges the one before it ten times: 10^30 entries if nothing stopped it.
  std::string text = "x-0: &l0 {autostart: true}\n";
  for (int i = 1; i <= 30; ++i) {
    text += "x-" + std::to_string(i) + ": &l" + std::to_string(i) + " {<<: [";
    for (int k = 0; k < 10; ++k) text += std::string(k ? ", " : "") + "*l" + std::to_string(i - 1);
    text += "], k" + std::to_string(i) + ": 1}\n";
  }
  text += "jobs:\n  a:\n    command: x\n    <<: *l30\n";
  const LoadResult result = from(text);
  const std::string errors = render(result);
  CHECK(errors.find("merges nested too deeply") != std::string::npos);
  // A chain of single merges deeper than the limit is refused too, without deep recursion.
  text = "x-0: &l0 {autostart: true}\n";
  for (int i = 1; i <= 5000; ++i) {
    text += "x-" + std::to_string(i) + ": &l" + std::to_string(i) + " {<<: *l" +
            std::to_string(i - 1) + "}\n";
  }
  text += "jobs:\n  a:\n    command: x\n    <<: *l5000\n";
  CHECK(render(from(text)).find("merges nested too deeply") != std::string::npos);
  // Wide rather than deep: 3 levels of 200 merges of a mapping of 100 keys.
  text = "x-env: &e {";
  for (int k = 0; k < 100; ++k)
    text += std::string(k ? ", " : "") + "V" + std::to_string(k) + ": x";
  text += "}\nx-a: &a {<<: [";
  for (int k = 0; k < 200; ++k) text += std::string(k ? ", " : "") + "*e";
  text += "]}\nx-b: &b {<<: [";
  for (int k = 0; k < 200; ++k) text += std::string(k ? ", " : "") + "*a";
  text += "]}\njobs:\n";
  for (int j = 0; j < 200; ++j) {
    text += "  j" + std::to_string(j) + ": {command: x, env: {<<: [";
    for (int k = 0; k < 200; ++k) text += std::string(k ? ", " : "") + "*b";
    text += "]}}\n";
  }
  CHECK(render(from(text)).find("merges bring in too many keys") != std::string::npos);
}

TEST_CASE("top-level keys that start with x- are ignored, in included files too") {
  TempDir dir;
  dir.write("vigil.yaml", "x-anything: [1, {2: 3}]\nsupervisor: {include: inc.yaml}\nx-: 1\n");
  dir.write("inc.yaml", "x-d: &d {restart: never}\njobs:\n  a: {command: x, <<: *d}\n");
  const LoadResult result = load("vigil.yaml", test_env());
  INFO(render(result));
  REQUIRE(result.ok());
  REQUIRE(result.config->jobs.size() == 1);
  CHECK(result.config->jobs[0].restart == RestartPolicy::never);
  // Only at the top level: under jobs: an x- name is a job like any other.
  CHECK(errors_of("jobs:\n  x-a: {}\n") ==
        "vigil.yaml:2:3: jobs.x-a: no command given (expected command: with a list of strings, "
        "or a string run by /bin/sh -c)\n");
}

TEST_CASE(
    "shared files: a log may not be the pidfile, the socket, the daemon's log or "
    "another job's log") {
  // Defaults (root's) count as much as settings written out; the message says which.
  CHECK(errors_of("jobs:\n  a:\n    command: x\n    stdout: /run/vigil/vigild.pid\n") ==
        "vigil.yaml:4:13: jobs.a.stdout: \"/run/vigil/vigild.pid\" is also the default of "
        "supervisor.pidfile (expected a file that no other setting uses)\n");
  CHECK(errors_of("jobs:\n  a:\n    command: x\n    stderr: /run/vigil/vigil.sock\n") ==
        "vigil.yaml:4:13: jobs.a.stderr: \"/run/vigil/vigil.sock\" is also the default of "
        "supervisor.socket (expected a file that no other setting uses)\n");
  // Relative paths are compared once resolved: vigild.pid beside the config.
  CHECK(render(load_from_string("supervisor:\n  pidfile: /srv/x/vigild.pid\n"
                                "jobs:\n  a:\n    command: x\n    stdout: vigild.pid\n",
                                "/srv/x/vigil.yaml", test_env())) ==
        "/srv/x/vigil.yaml:6:13: jobs.a.stdout: \"/srv/x/vigild.pid\" is also supervisor.pidfile "
        "at /srv/x/vigil.yaml:2:12 (expected a file that no other setting uses)\n");
  // A setting reported at the one written out when the other is a default.
  CHECK(errors_of("supervisor:\n  log: /var/log/vigil/web.out.log\n"
                  "jobs:\n  web:\n    command: x\n") ==
        "vigil.yaml:2:8: supervisor.log: \"/var/log/vigil/web.out.log\" is also the default of "
        "jobs.web.stdout (expected a file that no other setting uses)\n");
  // The supervisor's own files among themselves.
  CHECK(errors_of("supervisor:\n  socket: /srv/a\n  pidfile: /srv/a\n") ==
        "vigil.yaml:3:12: supervisor.pidfile: \"/srv/a\" is also supervisor.socket at "
        "vigil.yaml:2:11 (expected a file that no other setting uses)\n");
  // Not a backup: the job does not rotate, or keeps fewer.
  CHECK(from("jobs:\n  a: {command: x, stdout: /srv/a.log, log_max_size: 0}\n"
             "  b: {command: x, stdout: /srv/a.log.1}\n")
            .ok());
  CHECK(from("jobs:\n  a: {command: x, stdout: /srv/a.log, log_backups: 0}\n"
             "  b: {command: x, stdout: /srv/a.log.1}\n")
            .ok());
  CHECK(from("jobs:\n  a: {command: x, stdout: /srv/a.log, log_backups: 1}\n"
             "  b: {command: x, stdout: /srv/a.log.2}\n  c: {command: x, stdout: /srv/a.log.01}\n")
            .ok());
  // Devices are shared by nature.
  CHECK(from("jobs:\n  a: {command: x, stdout: /dev/console, stderr: /dev/console}\n"
             "  b: {command: x, stdout: /dev/console}\n")
            .ok());
}

TEST_CASE("shared files: jobs in different files, and three jobs on one file") {
  TempDir dir;
  dir.write("vigil.yaml",
            "supervisor: {include: conf.d/*.yaml}\njobs:\n  a: {command: x, stdout: /srv/s.log}\n");
  dir.write("conf.d/b.yaml", "jobs:\n  b: {command: x, stdout: /srv/s.log}\n");
  dir.write("conf.d/c.yaml", "jobs:\n  c: {command: x, stderr: /srv/s.log}\n");
  CHECK(render(load("vigil.yaml", test_env())) ==
        "conf.d/b.yaml:2:27: jobs.b.stdout: \"/srv/s.log\" is also jobs.a.stdout at "
        "vigil.yaml:3:27 (expected a file that no other setting uses)\n"
        "conf.d/c.yaml:2:27: jobs.c.stderr: \"/srv/s.log\" is also jobs.a.stdout at "
        "vigil.yaml:3:27 (expected a file that no other setting uses)\n");
}

TEST_CASE("shared files: one file reached through a symlinked folder or a hard link") {
  TempDir dir;
  const std::string root = dir.path().string();
  fs::create_directories(dir.path() / "logs");
  fs::create_directory_symlink(dir.path() / "logs", dir.path() / "linked");
  // Through the folder: the file need not exist.
  CHECK(render(load_from_string("jobs:\n  a: {command: x, stdout: logs/a.log}\n"
                                "  b: {command: x, stdout: linked/a.log}\n",
                                "vigil.yaml", test_env())) ==
        "vigil.yaml:3:27: jobs.b.stdout: \"" + root + "/linked/a.log\" is the same file as " +
            "jobs.a.stdout at vigil.yaml:2:27 (\"" + root +
            "/logs/a.log\") (expected a file that no other setting uses)\n");
  // A hard link: two names, one file.
  dir.write("logs/x.log", "");
  fs::create_hard_link(dir.path() / "logs/x.log", dir.path() / "logs/y.log");
  CHECK(
      render(load_from_string("jobs:\n  a: {command: x, stdout: logs/x.log, stderr: logs/y.log}\n",
                              "vigil.yaml", test_env()))
          .find("jobs.a.stderr: \"" + root +
                "/logs/y.log\" is the same file as the job's stdout") != std::string::npos);
  // A backup name through the link.
  CHECK(render(load_from_string("jobs:\n  a: {command: x, stdout: logs/a.log}\n"
                                "  b: {command: x, stdout: linked/a.log.1}\n",
                                "vigil.yaml", test_env()))
            .find("jobs.b.stdout: \"" + root + "/linked/a.log.1\" is a backup of jobs.a.stdout") !=
        std::string::npos);
  // A symlink in the last place is not followed: vigild refuses it when it opens the log,
  // so it cannot make two settings write one file.
  fs::create_symlink(dir.path() / "logs/x.log", dir.path() / "logs/planted.log");
  CHECK(load_from_string("jobs:\n  a: {command: x, stdout: logs/x.log, stderr: logs/planted.log}\n",
                         "vigil.yaml", test_env())
            .ok());
  // Distinct files in one folder are fine, whichever way it is reached.
  CHECK(load_from_string("jobs:\n  a: {command: x, stdout: logs/a.log}\n"
                         "  b: {command: x, stdout: linked/b.log}\n",
                         "vigil.yaml", test_env())
            .ok());
}

TEST_CASE("shared files: 10000 jobs are checked in one pass") {
  // A hash map, not a comparison of every pair: 20000 logs and one clash at the end.
  std::string text = "jobs:\n";
  for (int i = 0; i < 10000; ++i) {
    text += "  j" + std::to_string(i) + ": {command: x}\n";
  }
  text += "  last: {command: x, stdout: /var/log/vigil/j0.err.log}\n";
  const auto start = std::chrono::steady_clock::now();
  const LoadResult result = from(text);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(render(result) ==
        "/etc/vigil/vigil.yaml:10002:30: jobs.last.stdout: \"/var/log/vigil/j0.err.log\" is also "
        "the default of jobs.j0.stderr (expected a file that no other setting uses)\n");
  // Generous, for a loaded machine and a sanitizer build.
  CHECK(elapsed < 30s);
}
