// Tests of the order in which vigilctl picks its socket (-s, $VIGIL_SOCKET, the config's
// supervisor.socket, the default) and of what it says when a config cannot be used. The
// environment, files and config loader are fakes.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "client.h"
#include "socket_path.h"
#include "temp_dir.h"

using namespace vigil::ctl;
using vigil::config::Config;
using vigil::config::Diagnostic;
using vigil::config::LoadResult;

namespace {

// A world with a default config at /home/u/.config/vigil/vigil.yaml (when `files` says
// so) whose socket is /cfg.sock, and a default socket of /default.sock.
struct World {
  std::map<std::string, std::string> env;
  std::set<std::string> files;
  std::map<std::string, LoadResult> configs;
  std::vector<std::string> loaded;  // every path load_config was called with

  SocketSources sources() {
    SocketSources s;
    s.getenv = [this](std::string_view name) -> std::optional<std::string> {
      auto it = env.find(std::string(name));
      if (it == env.end()) return std::nullopt;
      return it->second;
    };
    s.file_exists = [this](const std::string& p) { return files.count(p) > 0; };
    s.load_config = [this](const std::string& p) {
      loaded.push_back(p);
      auto it = configs.find(p);
      if (it != configs.end()) return it->second;
      LoadResult r;
      r.errors.push_back(Diagnostic{{p, 0, 0}, "cannot read: No such file or directory"});
      return r;
    };
    s.default_config_path = [] { return std::string("/home/u/.config/vigil/vigil.yaml"); };
    s.default_socket = [] { return std::string("/default.sock"); };
    return s;
  }
};

LoadResult config_with_socket(const std::string& path, const std::string& socket) {
  Config c;
  c.path = path;
  c.supervisor.socket = socket;
  LoadResult r;
  r.config = c;
  return r;
}

const std::string kDefaultConfig = "/home/u/.config/vigil/vigil.yaml";

}  // namespace

TEST_CASE("socket: -s wins over everything") {
  World w;
  w.env["VIGIL_SOCKET"] = "/env.sock";
  w.files.insert(kDefaultConfig);
  w.configs[kDefaultConfig] = config_with_socket(kDefaultConfig, "/cfg.sock");
  GlobalOptions o;
  o.socket = "/flag.sock";
  o.config = kDefaultConfig;
  ResolvedSocket r = resolve_socket(o, w.sources());
  CHECK(r.path == "/flag.sock");
  CHECK(r.source == "-s");
  CHECK(r.warnings.empty());
  CHECK(w.loaded.empty());  // no config is read when it is not needed
}

TEST_CASE("socket: $VIGIL_SOCKET comes next, before any config") {
  World w;
  w.env["VIGIL_SOCKET"] = "/env.sock";
  w.files.insert(kDefaultConfig);
  w.configs[kDefaultConfig] = config_with_socket(kDefaultConfig, "/cfg.sock");
  GlobalOptions o;
  o.config = kDefaultConfig;
  ResolvedSocket r = resolve_socket(o, w.sources());
  CHECK(r.path == "/env.sock");
  CHECK(r.source == "$VIGIL_SOCKET");
  CHECK(w.loaded.empty());
}

TEST_CASE("socket: an empty $VIGIL_SOCKET counts as unset") {
  World w;
  w.env["VIGIL_SOCKET"] = "";
  ResolvedSocket r = resolve_socket(GlobalOptions{}, w.sources());
  CHECK(r.path == "/default.sock");
  CHECK(r.source == "default");
}

TEST_CASE("socket: the config named by -c") {
  World w;
  w.configs["/etc/vigil/other.yaml"] = config_with_socket("/etc/vigil/other.yaml", "/other.sock");
  GlobalOptions o;
  o.config = "/etc/vigil/other.yaml";
  ResolvedSocket r = resolve_socket(o, w.sources());
  CHECK(r.path == "/other.sock");
  CHECK(r.source == "config /etc/vigil/other.yaml");
  CHECK(w.loaded == std::vector<std::string>{"/etc/vigil/other.yaml"});
}

TEST_CASE("socket: the default config, when it exists") {
  World w;
  w.files.insert(kDefaultConfig);
  w.configs[kDefaultConfig] = config_with_socket(kDefaultConfig, "/cfg.sock");
  ResolvedSocket r = resolve_socket(GlobalOptions{}, w.sources());
  CHECK(r.path == "/cfg.sock");
  CHECK(r.source == "config " + kDefaultConfig);
}

TEST_CASE("socket: no default config means the default socket, silently") {
  World w;
  ResolvedSocket r = resolve_socket(GlobalOptions{}, w.sources());
  CHECK(r.path == "/default.sock");
  CHECK(r.source == "default");
  CHECK(r.warnings.empty());
  CHECK(w.loaded.empty());
}

TEST_CASE("socket: a config that fails to load gives a warning and the default") {
  World w;
  w.files.insert(kDefaultConfig);
  LoadResult broken;
  broken.errors.push_back(Diagnostic{{kDefaultConfig, 3, 5}, "jobs.web.command: expected a list"});
  broken.errors.push_back(Diagnostic{{kDefaultConfig, 9, 1}, "unknown key 'jbos'"});
  w.configs[kDefaultConfig] = broken;
  ResolvedSocket r = resolve_socket(GlobalOptions{}, w.sources());
  CHECK(r.path == "/default.sock");
  CHECK(r.source == "default");
  CHECK(r.warnings ==
        std::vector<std::string>{
            "vigilctl: warning: cannot use the socket of /home/u/.config/vigil/vigil.yaml: "
            "/home/u/.config/vigil/vigil.yaml:3:5: jobs.web.command: expected a list (and 1 "
            "more); trying the default socket"});
}

TEST_CASE("socket: a missing -c file is reported, not silently skipped") {
  World w;
  GlobalOptions o;
  o.config = "/nope.yaml";
  ResolvedSocket r = resolve_socket(o, w.sources());
  CHECK(r.path == "/default.sock");
  CHECK(r.warnings == std::vector<std::string>{
                          "vigilctl: warning: cannot use the socket of /nope.yaml: /nope.yaml: "
                          "cannot read: No such file or directory; trying the default socket"});
}

TEST_CASE("connect errors say what happened and what to do") {
  CHECK(describe_connect_error("/run/vigil/vigil.sock", ENOENT) ==
        "cannot connect to /run/vigil/vigil.sock: no such file (is vigild running?)");
  CHECK(describe_connect_error("/run/vigil/vigil.sock", ECONNREFUSED) ==
        "cannot connect to /run/vigil/vigil.sock: connection refused (is vigild running?)");
  CHECK(describe_connect_error("/run/vigil/vigil.sock", EACCES) ==
        "cannot connect to /run/vigil/vigil.sock: permission denied (run as the socket's "
        "owner, or set supervisor.socket_group)");
  CHECK(describe_connect_error("/x", ENAMETOOLONG) ==
        "cannot connect to /x: the path is too long for a Unix socket (at most 107 bytes)");
}

TEST_CASE("connecting to a missing socket, or to a path that is too long") {
  auto r = Connection::open("/nonexistent-dir-for-vigil-tests/vigil.sock");
  REQUIRE(std::holds_alternative<ConnectError>(r));
  CHECK(std::get<ConnectError>(r).err == ENOENT);
  CHECK(std::get<ConnectError>(r).message ==
        "cannot connect to /nonexistent-dir-for-vigil-tests/vigil.sock: no such file (is "
        "vigild running?)");
  auto long_path = Connection::open("/" + std::string(200, 'x'));
  REQUIRE(std::holds_alternative<ConnectError>(long_path));
  CHECK(std::get<ConnectError>(long_path).err == ENAMETOOLONG);
}

TEST_CASE("connecting to a regular file or a folder says what is there, not 'is vigild running?'") {
  vigil::test::TempDir dir;
  const std::string file = dir / "vigil.yaml";
  std::ofstream(file) << "jobs: {}\n";
  auto r = Connection::open(file);
  REQUIRE(std::holds_alternative<ConnectError>(r));
  CHECK(std::get<ConnectError>(r).message ==
        "cannot connect to " + file + ": it is a regular file, not a socket");
  auto folder = Connection::open(dir.path);
  REQUIRE(std::holds_alternative<ConnectError>(folder));
  CHECK(std::get<ConnectError>(folder).message ==
        "cannot connect to " + dir.path + ": it is a directory, not a socket");
  CHECK(describe_not_a_socket("/p", S_IFIFO | 0600) ==
        "cannot connect to /p: it is a FIFO, not a socket");
}
