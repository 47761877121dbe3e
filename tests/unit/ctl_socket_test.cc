// Tests of the order in which vigilctl picks its socket (-s, $VIGIL_SOCKET, the config's
// supervisor.socket, the default) and of what it says when a config cannot be used. The
// environment, files and config reader are fakes; the reader itself is tested last, on
// real files.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "client.h"
#include "server_trust.h"
#include "socket_path.h"
#include "temp_dir.h"

using namespace vigil::ctl;
using vigil::config::Diagnostic;
using vigil::config::SocketSetting;

namespace {

// A world with a default config at /home/u/.config/vigil/vigil.yaml (when `files` says
// so) whose socket is /cfg.sock, and a default socket of /default.sock.
struct World {
  std::map<std::string, std::string> env;
  std::set<std::string> files;
  std::map<std::string, SocketSetting> configs;
  std::vector<std::string> loaded;  // every path read_socket was called with

  SocketSources sources() {
    SocketSources s;
    s.getenv = [this](std::string_view name) -> std::optional<std::string> {
      auto it = env.find(std::string(name));
      if (it == env.end()) return std::nullopt;
      return it->second;
    };
    s.file_exists = [this](const std::string& p) { return files.count(p) > 0; };
    s.read_socket = [this](const std::string& p) {
      loaded.push_back(p);
      auto it = configs.find(p);
      if (it != configs.end()) return it->second;
      SocketSetting r;
      r.errors.push_back(Diagnostic{{p, 0, 0}, "cannot read: No such file or directory"});
      return r;
    };
    s.default_config_path = [] { return std::string("/home/u/.config/vigil/vigil.yaml"); };
    s.default_socket = [] { return std::string("/default.sock"); };
    return s;
  }
};

SocketSetting config_with_socket(const std::string& socket) {
  SocketSetting r;
  r.socket = socket;
  return r;
}

const std::string kDefaultConfig = "/home/u/.config/vigil/vigil.yaml";

}  // namespace

TEST_CASE("socket: -s wins over everything") {
  World w;
  w.env["VIGIL_SOCKET"] = "/env.sock";
  w.files.insert(kDefaultConfig);
  w.configs[kDefaultConfig] = config_with_socket("/cfg.sock");
  GlobalOptions o;
  o.socket = "/flag.sock";
  o.config = kDefaultConfig;
  ResolvedSocket r = resolve_socket(o, w.sources());
  CHECK(r.path == "/flag.sock");
  CHECK(r.source == "-s");
  CHECK(r.ok());
  CHECK(w.loaded.empty());  // no config is read when it is not needed
}

TEST_CASE("socket: $VIGIL_SOCKET comes next, before any config") {
  World w;
  w.env["VIGIL_SOCKET"] = "/env.sock";
  w.files.insert(kDefaultConfig);
  w.configs[kDefaultConfig] = config_with_socket("/cfg.sock");
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
  w.configs["/etc/vigil/other.yaml"] = config_with_socket("/other.sock");
  GlobalOptions o;
  o.config = "/etc/vigil/other.yaml";
  ResolvedSocket r = resolve_socket(o, w.sources());
  CHECK(r.path == "/other.sock");
  CHECK(r.source == "config /etc/vigil/other.yaml");
  CHECK(w.loaded == std::vector<std::string>{"/etc/vigil/other.yaml"});
}

TEST_CASE("socket: a config that does not set one leaves it to the default, as for vigild") {
  World w;
  w.configs["/etc/vigil/other.yaml"] = SocketSetting{};
  GlobalOptions o;
  o.config = "/etc/vigil/other.yaml";
  ResolvedSocket r = resolve_socket(o, w.sources());
  CHECK(r.ok());
  CHECK(r.path == "/default.sock");
  CHECK(r.source == "default");
}

TEST_CASE("socket: the default config, when it exists") {
  World w;
  w.files.insert(kDefaultConfig);
  w.configs[kDefaultConfig] = config_with_socket("/cfg.sock");
  ResolvedSocket r = resolve_socket(GlobalOptions{}, w.sources());
  CHECK(r.path == "/cfg.sock");
  CHECK(r.source == "config " + kDefaultConfig);
}

TEST_CASE("socket: no default config means the default socket, silently") {
  World w;
  ResolvedSocket r = resolve_socket(GlobalOptions{}, w.sources());
  CHECK(r.path == "/default.sock");
  CHECK(r.source == "default");
  CHECK(r.ok());
  CHECK(w.loaded.empty());
}

TEST_CASE("socket: a config whose socket cannot be read is an error, never the default") {
  World w;
  w.files.insert(kDefaultConfig);
  SocketSetting broken;
  broken.errors.push_back(
      Diagnostic{{kDefaultConfig, 2, 11}, "supervisor.socket: ${RUN} is not set"});
  w.configs[kDefaultConfig] = broken;
  ResolvedSocket r = resolve_socket(GlobalOptions{}, w.sources());
  CHECK_FALSE(r.ok());
  CHECK(r.path.empty());
  CHECK(r.errors == std::vector<std::string>{
                        "/home/u/.config/vigil/vigil.yaml:2:11: supervisor.socket: ${RUN} is not "
                        "set",
                        "vigilctl: cannot tell which socket /home/u/.config/vigil/vigil.yaml "
                        "names: fix it, or name the socket with -s or $VIGIL_SOCKET"});
}

TEST_CASE("socket: a missing -c file is an error, not silently skipped") {
  World w;
  GlobalOptions o;
  o.config = "/nope.yaml";
  ResolvedSocket r = resolve_socket(o, w.sources());
  CHECK(r.path.empty());
  CHECK(r.errors == std::vector<std::string>{
                        "/nope.yaml: cannot read: No such file or directory",
                        "vigilctl: cannot tell which socket /nope.yaml names: fix it, or name the "
                        "socket with -s or $VIGIL_SOCKET"});
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

// --- config::read_socket_setting, on real files: the socket and nothing else. ---

namespace {

SocketSetting read_setting(const vigil::test::TempDir& dir, const std::string& text,
                           std::map<std::string, std::string> vars = {}) {
  const std::string path = dir / "vigil.yaml";
  std::ofstream(path) << text;
  vigil::config::Environment env;
  env.uid = 1000;
  env.getenv = [vars](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  return vigil::config::read_socket_setting(path, env);
}

std::string first_error(const SocketSetting& s) {
  REQUIRE_FALSE(s.errors.empty());
  return s.errors.front().str();
}

}  // namespace

TEST_CASE("read_socket_setting: only the socket's own problems count") {
  vigil::test::TempDir dir;
  const std::string file = dir / "vigil.yaml";
  // What the whole loader refuses on this machine: an unset variable, an unknown user
  // and group, an unknown key, a job with no command.
  const std::string rest =
      "jobs:\n"
      "  web:\n"
      "    command: [\"${NOT_SET_ANYWHERE}/web\"]\n"
      "    user: no-such-user-here\n"
      "    group: no-such-group-here\n"
      "    bogus: 1\n"
      "  empty: {}\n";
  SocketSetting s = read_setting(
      dir, "supervisor:\n  socket: ${RUN}/x.sock\n  socket_group: nogroup-xyz\n" + rest,
      {{"RUN", "/run/user/1000"}});
  CHECK(s.ok());
  CHECK(s.socket == "/run/user/1000/x.sock");
  // Relative to the config's folder, as vigild reads it.
  s = read_setting(dir, "supervisor: {socket: run/../vigil.sock}\n" + rest);
  CHECK(s.socket == dir / "vigil.sock");
  // Not set: the default applies.
  s = read_setting(dir, "supervisor: {log_dir: /x}\n" + rest);
  CHECK(s.ok());
  CHECK_FALSE(s.socket.has_value());
  s = read_setting(dir, rest);
  CHECK(s.ok());
  CHECK_FALSE(s.socket.has_value());
}

TEST_CASE("read_socket_setting: a socket that cannot be read is an error at its place") {
  vigil::test::TempDir dir;
  const std::string file = dir / "vigil.yaml";
  SocketSetting s = read_setting(dir, "supervisor:\n  socket: ${RUN}/x.sock\n");
  CHECK_FALSE(s.socket.has_value());
  CHECK(first_error(s).rfind(file + ":2:11: supervisor.socket: ", 0) == 0);
  CHECK(first_error(s).find("RUN") != std::string::npos);
  s = read_setting(dir, "supervisor:\n  socket: [a]\n");
  CHECK(first_error(s).rfind(file + ":2:11: supervisor.socket: ", 0) == 0);
  s = read_setting(dir, "supervisor:\n  socket: /a.sock\n  socket: /b.sock\n");
  CHECK(first_error(s) ==
        file + ":3:3: supervisor.socket: defined twice (first at " + file + ":2:3)");
  s = read_setting(dir, "supervisor: [socket]\n");
  CHECK(first_error(s).rfind(file + ":1:13: supervisor: expected a mapping", 0) == 0);
  s = read_setting(dir, "supervisor: {socket: /a.sock\n");  // not YAML
  CHECK_FALSE(s.ok());
  CHECK_FALSE(s.socket.has_value());
  s = vigil::config::read_socket_setting(dir / "none.yaml", {});
  CHECK(first_error(s) == dir / "none.yaml" + ": cannot read: No such file or directory");
}

// --- Who may answer: server_trust and check_server, with a fake user database. ---

namespace {

UserLookup fake_users() {
  static const std::map<std::string, uid_t> users = {{"root", 0}, {"alice", 1000}, {"vigil", 998}};
  UserLookup l;
  l.uid_of = [](const std::string& name) -> std::optional<uid_t> {
    auto it = users.find(name);
    if (it == users.end()) return std::nullopt;
    return it->second;
  };
  l.name_of = [](uid_t uid) -> std::optional<std::string> {
    for (const auto& [name, id] : users) {
      if (id == uid) return name;
    }
    return std::nullopt;
  };
  return l;
}

std::function<std::optional<std::string>(std::string_view)> env_of(
    std::map<std::string, std::string> vars) {
  return [vars](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

ServerTrust trust_of(const GlobalOptions& o, std::map<std::string, std::string> vars = {}) {
  auto t = server_trust(o, 1000, env_of(std::move(vars)), fake_users());
  if (auto* e = std::get_if<std::string>(&t)) FAIL("unexpected: " << *e);
  return std::get<ServerTrust>(t);
}

}  // namespace

TEST_CASE("server trust: root and the user itself, and no one else unless named") {
  const ServerTrust t = trust_of({});
  CHECK(check_server(0, t, "/s", fake_users()) == "");
  CHECK(check_server(1000, t, "/s", fake_users()) == "");
  CHECK(check_server(998, t, "/tmp/vigil-1000/vigil.sock", fake_users()) ==
        "refusing to talk to /tmp/vigil-1000/vigil.sock: it is served by uid 998 (vigil), and "
        "vigilctl trusts only root and you (uid 1000 (alice)) (another user may be answering "
        "in vigild's place); if vigild runs as that user, say so with --server-user vigil or "
        "VIGIL_SERVER_USER=vigil");
  // A uid with no name is named by number.
  const std::string nameless = check_server(4242, t, "/s", fake_users());
  CHECK(nameless.find("--server-user 4242 or VIGIL_SERVER_USER=4242") != std::string::npos);
}

TEST_CASE("server trust: --server-user, else $VIGIL_SERVER_USER, by name or uid") {
  GlobalOptions o;
  o.server_user = "vigil";
  ServerTrust t = trust_of(o, {{"VIGIL_SERVER_USER", "4242"}});
  CHECK(t.expected == 998u);  // the option wins
  CHECK(check_server(998, t, "/s", fake_users()) == "");
  CHECK(check_server(0, t, "/s", fake_users()) == "");
  const std::string other = check_server(4242, t, "/s", fake_users());
  CHECK(other.find("trusts only root, you and uid 998 (vigil)") != std::string::npos);
  t = trust_of({}, {{"VIGIL_SERVER_USER", "4242"}});
  CHECK(t.expected == 4242u);  // a uid need not have a name here
  CHECK_FALSE(trust_of({}, {{"VIGIL_SERVER_USER", ""}}).expected.has_value());
  o.server_user = "mallory";
  auto bad = server_trust(o, 1000, env_of({}), fake_users());
  REQUIRE(std::holds_alternative<std::string>(bad));
  CHECK(std::get<std::string>(bad) ==
        "--server-user: no user named 'mallory' (expected a user name or a uid)");
  bad = server_trust({}, 1000, env_of({{"VIGIL_SERVER_USER", "99999999999"}}), fake_users());
  REQUIRE(std::holds_alternative<std::string>(bad));
  CHECK(std::get<std::string>(bad).rfind("$VIGIL_SERVER_USER: no user named '99999999999'", 0) ==
        0);
}

TEST_CASE("peer_uid: the uid of the process at the other end") {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  Connection conn(fds[0]);
  const auto peer = conn.peer_uid();
  REQUIRE(std::holds_alternative<uid_t>(peer));
  CHECK(std::get<uid_t>(peer) == ::geteuid());
  ::close(fds[1]);
}
