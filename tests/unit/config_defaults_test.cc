// Unit tests of the defaults that depend on who runs vigild (root or not, the XDG
// variables), of Diagnostic::str() and of JobSpec::same_definition.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <string>

#include "loader.h"
#include "runtime_dir.h"
#include "temp_dir.h"

using namespace vigil::config;
using namespace std::chrono_literals;

namespace {

Environment fake_env(uid_t uid, std::map<std::string, std::string> vars) {
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

// A uid with no passwd entry, so that no real home folder leaks into the defaults.
constexpr uid_t kNobodyKnows = 3999999;

}  // namespace

TEST_CASE("root gets the system locations whatever the environment says") {
  const Environment env = fake_env(0, {{"XDG_RUNTIME_DIR", "/run/user/0"}, {"HOME", "/root"}});
  const SupervisorSpec spec = default_supervisor(env);
  CHECK(spec.socket == "/run/vigil/vigil.sock");
  CHECK(spec.pidfile == "/run/vigil/vigild.pid");
  CHECK(spec.log == "/var/log/vigil/vigild.log");
  CHECK(spec.log_dir == "/var/log/vigil");
  CHECK(spec.socket_mode == 0600);
  CHECK(spec.umask == 0022);
  CHECK(spec.shutdown_timeout == 30s);
  CHECK_FALSE(spec.socket_group.has_value());
  CHECK(spec.include.empty());
  CHECK(default_config_path(env) == "/etc/vigil/vigil.yaml");
}

TEST_CASE("other users get the XDG directories") {
  const Environment env = fake_env(1000, {{"XDG_RUNTIME_DIR", "/run/user/1000"},
                                          {"XDG_STATE_HOME", "/home/me/.state"},
                                          {"XDG_CONFIG_HOME", "/home/me/.cfg"},
                                          {"HOME", "/home/me"}});
  const SupervisorSpec spec = default_supervisor(env);
  CHECK(spec.socket == "/run/user/1000/vigil.sock");
  CHECK(spec.pidfile == "/run/user/1000/vigild.pid");
  CHECK(spec.log == "/home/me/.state/vigil/vigild.log");
  CHECK(spec.log_dir == "/home/me/.state/vigil");
  CHECK(default_config_path(env) == "/home/me/.cfg/vigil/vigil.yaml");
}

TEST_CASE("other users without XDG variables fall back to /tmp and $HOME") {
  const Environment env = fake_env(1000, {{"HOME", "/home/me"}});
  const SupervisorSpec spec = default_supervisor(env);
  CHECK(spec.socket == "/tmp/vigil-1000/vigil.sock");
  CHECK(spec.pidfile == "/tmp/vigil-1000/vigild.pid");
  CHECK(spec.log == "/home/me/.local/state/vigil/vigild.log");
  CHECK(spec.log_dir == "/home/me/.local/state/vigil");
  CHECK(default_config_path(env) == "/home/me/.config/vigil/vigil.yaml");
}

TEST_CASE("empty or relative XDG variables are ignored, trailing slashes dropped") {
  const Environment env = fake_env(1000, {{"XDG_RUNTIME_DIR", ""},
                                          {"XDG_STATE_HOME", "relative/state"},
                                          {"XDG_CONFIG_HOME", "/home/me/.cfg/"},
                                          {"HOME", "/home/me/"}});
  const SupervisorSpec spec = default_supervisor(env);
  CHECK(spec.socket == "/tmp/vigil-1000/vigil.sock");
  CHECK(spec.log_dir == "/home/me/.local/state/vigil");
  CHECK(default_config_path(env) == "/home/me/.cfg/vigil/vigil.yaml");
}

TEST_CASE("without any home, logs go beside the socket") {
  const Environment env = fake_env(kNobodyKnows, {});
  const SupervisorSpec spec = default_supervisor(env);
  CHECK(spec.socket == "/tmp/vigil-3999999/vigil.sock");
  CHECK(spec.log == "/tmp/vigil-3999999/vigild.log");
  CHECK(spec.log_dir == "/tmp/vigil-3999999");
  CHECK(default_config_path(env) == "/etc/vigil/vigil.yaml");
}

TEST_CASE("a default-constructed Environment does not crash the defaults") {
  Environment env;  // no getenv function at all
  env.uid = kNobodyKnows;
  CHECK(default_supervisor(env).socket == "/tmp/vigil-3999999/vigil.sock");
}

TEST_CASE("Environment::current reads the real process") {
  const Environment env = Environment::current();
  CHECK(env.uid == geteuid());
  CHECK(env.check_accounts);
  REQUIRE(env.getenv);
  ::setenv("VIGIL_CONFIG_TEST_VAR", "value", 1);
  CHECK(env.getenv("VIGIL_CONFIG_TEST_VAR") == "value");
  ::unsetenv("VIGIL_CONFIG_TEST_VAR");
  CHECK(env.getenv("VIGIL_CONFIG_TEST_VAR") == std::nullopt);
}

TEST_CASE("the runtime directory: none for root, XDG_RUNTIME_DIR or /tmp/vigil-UID otherwise") {
  CHECK_FALSE(runtime_dir(fake_env(0, {{"XDG_RUNTIME_DIR", "/run/user/0"}})).has_value());
  CHECK(runtime_dir(fake_env(1000, {{"XDG_RUNTIME_DIR", "/run/user/1000/"}})) == "/run/user/1000");
  CHECK(runtime_dir(fake_env(1000, {})) == "/tmp/vigil-1000");
}

TEST_CASE("check_private_dir: the user's own folder, writable by no one else, not a link") {
  // Real folders with other owners: this needs root, as the integration tests do.
  if (::geteuid() != 0) return;
  vigil::test::TempDir d;
  const uid_t me = 4000001;  // any uid: root can give folders to it
  const std::string dir = d / "run";
  // Missing: made with exactly the mode asked for, whatever the umask.
  const mode_t old = ::umask(0077);
  CHECK(check_private_dir(dir, 0, 0711) == "");
  ::umask(old);
  struct stat st {};
  REQUIRE(::lstat(dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0711);
  // Missing and not to be made: nothing there to distrust.
  CHECK(check_private_dir(d / "none", me) == "");
  // Someone else's.
  REQUIRE(::chown(dir.c_str(), 4000002, 0) == 0);
  CHECK(check_private_dir(dir, me, 0700) ==
        dir +
            " is owned by uid 4000002, not by you (uid 4000001): another user may have "
            "made it to take over the socket; remove it (as its owner or root), or set "
            "XDG_RUNTIME_DIR to a directory of your own");
  // The user's own, but writable by its group.
  REQUIRE(::chown(dir.c_str(), me, 0) == 0);
  REQUIRE(::chmod(dir.c_str(), 0770) == 0);
  CHECK(check_private_dir(dir, me) == dir +
                                          " may be written by other users (mode 0770), who "
                                          "could replace the socket in it: run chmod go-w " +
                                          dir + ", or remove it");
  REQUIRE(::chmod(dir.c_str(), 0755) == 0);
  CHECK(check_private_dir(dir, me) == "");  // readable by others is fine
  // A link to the user's own folder is still not the folder.
  const std::string link = d / "link";
  REQUIRE(::symlink(dir.c_str(), link.c_str()) == 0);
  CHECK(check_private_dir(link, me, 0700).rfind(link + " is a symbolic link (owned by uid 0", 0) ==
        0);
  CHECK(check_private_dir(link, me).rfind(link + " is a symbolic link", 0) == 0);
  struct stat lst {};
  REQUIRE(::lstat(link.c_str(), &lst) == 0);
  CHECK(S_ISLNK(lst.st_mode));  // not replaced, not followed
}

TEST_CASE("prepare_runtime_dir: only for what lies in the runtime directory") {
  if (::geteuid() != 0) return;
  vigil::test::TempDir d;
  const std::string run = d / "run";
  Environment env = fake_env(4000001, {{"XDG_RUNTIME_DIR", run}});
  SupervisorSpec spec = default_supervisor(env);
  // Everything elsewhere: nothing is made.
  spec.socket = d / "elsewhere/vigil.sock";
  spec.pidfile = d / "elsewhere/vigild.pid";
  spec.log = d / "elsewhere/vigild.log";
  spec.log_dir = d / "elsewhere";
  CHECK(prepare_runtime_dir(spec, env) == "");
  CHECK(::access(run.c_str(), F_OK) != 0);
  // The pidfile there: made 0700 (and then owned by whoever made it: root here).
  spec.pidfile = run + "/vigild.pid";
  CHECK(prepare_runtime_dir(spec, env).rfind(run + " is owned by uid 0", 0) == 0);
  struct stat st {};
  REQUIRE(::lstat(run.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  REQUIRE(::rmdir(run.c_str()) == 0);
  // The socket there, for a group: members may pass through to it.
  spec.socket = run + "/vigil.sock";
  spec.socket_group = "adm";
  CHECK(prepare_runtime_dir(spec, env).rfind(run + " is owned by uid 0", 0) == 0);
  REQUIRE(::lstat(run.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0711);
  REQUIRE(::rmdir(run.c_str()) == 0);
  // Root has no runtime directory: nothing is checked or made.
  env.uid = 0;
  CHECK(prepare_runtime_dir(spec, env) == "");
  CHECK(::access(run.c_str(), F_OK) != 0);
}

TEST_CASE("Diagnostic::str renders file:line:col: message, without a position when none") {
  CHECK(Diagnostic{{"vigil.yaml", 12, 5}, "jobs.web.umask: \"0999\" is not an octal mode"}.str() ==
        "vigil.yaml:12:5: jobs.web.umask: \"0999\" is not an octal mode");
  CHECK(Diagnostic{{"missing.yaml", 0, 0}, "cannot read: No such file or directory"}.str() ==
        "missing.yaml: cannot read: No such file or directory");
  CHECK(Diagnostic{{"", 0, 0}, "no file"}.str() == "no file");
}

TEST_CASE("same_definition compares everything but defined_at") {
  JobSpec a;
  a.name = "web";
  a.argv = {"/bin/true"};
  a.defined_at = {"vigil.yaml", 3, 3};
  JobSpec b = a;
  b.defined_at = {"conf.d/web.yaml", 2, 3};
  CHECK(a.same_definition(b));

  // Each field on its own makes the definition differ.
  const std::vector<std::pair<const char*, void (*)(JobSpec&)>> changes = {
      {"name", [](JobSpec& j) { j.name = "web2"; }},
      {"argv", [](JobSpec& j) { j.argv.push_back("-v"); }},
      {"shell", [](JobSpec& j) { j.shell = true; }},
      {"cwd", [](JobSpec& j) { j.cwd = "/srv"; }},
      {"umask", [](JobSpec& j) { j.umask = 077; }},
      {"env", [](JobSpec& j) { j.env.emplace_back("A", "1"); }},
      {"user", [](JobSpec& j) { j.user = "www-data"; }},
      {"group", [](JobSpec& j) { j.group = "www-data"; }},
      {"stdout_log", [](JobSpec& j) { j.stdout_log.kind = Output::Kind::discard; }},
      {"stderr_log", [](JobSpec& j) { j.stderr_log.path = "/x"; }},
      {"log_max_size", [](JobSpec& j) { j.log_max_size = 1; }},
      {"log_backups", [](JobSpec& j) { j.log_backups = 1; }},
      {"log_timestamps", [](JobSpec& j) { j.log_timestamps = true; }},
      {"autostart", [](JobSpec& j) { j.autostart = false; }},
      {"restart", [](JobSpec& j) { j.restart = RestartPolicy::always; }},
      {"success_exit_codes",
       [](JobSpec& j) {
         j.success_exit_codes = {0, 1};
       }},
      {"start_seconds", [](JobSpec& j) { j.start_seconds = 5s; }},
      {"start_retries", [](JobSpec& j) { j.start_retries = 9; }},
      {"backoff", [](JobSpec& j) { j.backoff.factor = 3; }},
      {"stop_signal", [](JobSpec& j) { j.stop_signal = 2; }},
      {"stop_timeout", [](JobSpec& j) { j.stop_timeout = 1s; }},
      {"kill_group", [](JobSpec& j) { j.kill_group = false; }},
  };
  // Not a structured binding: CAPTURE captures it in a lambda, which clang 14 rejects.
  for (const auto& change : changes) {
    CAPTURE(change.first);
    JobSpec c = a;
    change.second(c);
    CHECK_FALSE(a.same_definition(c));
    CHECK_FALSE(c.same_definition(a));
  }
}
