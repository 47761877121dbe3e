// Tests of whole vigilctl commands over a socketpair standing in for vigild: the daemon's
// lines are written before the command runs, and the test checks the request sent, what
// went to stdout and stderr, and the exit status.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <vector>

#include "app.h"
#include "args.h"
#include "client.h"

using namespace vigil::ctl;
using vigil::protocol::json;

namespace {

// Reads everything a non-blocking fd holds now.
std::string drain(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

struct Pipe {
  int r = -1;
  int w = -1;
  Pipe() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
};

struct Result {
  int status = -1;
  std::string request;  // what vigilctl sent
  std::string out;
  std::string err;
};

// Runs `args` against a daemon that has already written `daemon_lines` and then either
// hangs up (close_after) or stays connected.
Result run(const std::vector<std::string>& args, const std::string& daemon_lines,
           bool close_after = true, bool stdout_reader_gone = false, bool ctrl_c = false) {
  auto parsed = parse_args(args);
  REQUIRE(std::holds_alternative<Invocation>(parsed));
  const Invocation inv = std::get<Invocation>(parsed);

  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  REQUIRE(::write(sv[1], daemon_lines.data(), daemon_lines.size()) ==
          static_cast<ssize_t>(daemon_lines.size()));
  if (close_after) ::shutdown(sv[1], SHUT_WR);

  Pipe out, err;
  if (stdout_reader_gone) {
    // As vigilctl's main() does: a closed pipe must be an EPIPE, not a fatal signal.
    std::signal(SIGPIPE, SIG_IGN);
    ::close(out.r);
    out.r = -1;
  }
  Connection conn(sv[0]);
  Terminal term;
  term.out = out.w;
  term.err = err.w;
  // As if SIGINT had arrived before vigilctl got to wait for the daemon.
  static volatile std::sig_atomic_t flag;
  flag = ctrl_c ? 1 : 0;
  term.interrupted = &flag;

  Result r;
  r.status = run_command(inv, conn, term);
  ::fcntl(sv[1], F_SETFL, O_NONBLOCK);
  r.request = drain(sv[1]);
  ::close(sv[1]);
  if (out.r >= 0) r.out = drain(out.r);
  r.err = drain(err.r);
  return r;
}

const char* kStatusResponse =
    R"j({"id":1,"ok":true,"result":[{"name":"web","state":"running","pid":4242,"uptime":3.5,)j"
    R"j("restarts":0,"last_exit":null,"reason":null},{"name":"db","state":"fatal","pid":null,)j"
    R"j("uptime":null,"restarts":3,"last_exit":{"code":1},"reason":null}]})j"
    "\n";

// What vigilctl status sends (only the members its table shows), and the table it
// prints for kStatusResponse.
const char* kStatusTableRequest =
        "{\"id\":1,\"cmd\":\"status\",\"args\":{\"fields\":[\"name\",\"state\",\"pid\",\"uptime\","
        "\"restarts\",\"reason\",\"last_exit\",\"log_error\"]}}\n";
const char* kStatusTable =
        "NAME  STATE    PID   UPTIME  RESTARTS  NOTE\n"
        "web   running  4242  3s      0\n"
        "db    fatal    -     -       3         exited 1\n";

}  // namespace

TEST_CASE("app: status prints the table and exits 3 when a job is not running") {
  Result r = run({"status"}, kStatusResponse);
  // Only the members the table shows are asked for.
  CHECK(r.request == kStatusTableRequest);
  CHECK(r.out == kStatusTable);
  CHECK(r.err == "");
  CHECK(r.status == 3);
}

TEST_CASE("app: status asks a vigild that does not know fields again, without them") {
  const std::string refusal = R"j({"id":1,"ok":false,"error":{"code":"bad_request",)j"
                              R"j("message":"unknown argument 'fields' for 'status'"}})j"
                              "\n";
  Result r = run({"status"}, refusal + kStatusResponse);
  CHECK(r.request == std::string(kStatusTableRequest) + "{\"id\":1,\"cmd\":\"status\"}\n");
  CHECK(r.out == kStatusTable);
  CHECK(r.err == "");
  CHECK(r.status == 3);

  // Any other refusal is the answer.
  const std::string other =
      R"j({"id":1,"ok":false,"error":{"code":"bad_request","message":"args.fields: no status member \"x\""}})j"
      "\n";
  r = run({"status"}, other + kStatusResponse);
  CHECK(r.request.find('\n') == r.request.size() - 1);  // asked once
  CHECK(r.err.find("no status member") != std::string::npos);
  CHECK(r.status != 0);
}

TEST_CASE("app: status exits 0 when every job runs") {
  Result r = run({"status", "web"},
                 R"j({"id":1,"ok":true,"result":[{"name":"web","state":"running","pid":1}]})j"
                 "\n");
  CHECK(r.request ==
        "{\"id\":1,\"cmd\":\"status\",\"args\":{\"fields\":[\"name\",\"state\",\"pid\",\"uptime\","
        "\"restarts\",\"reason\",\"last_exit\",\"log_error\"],\"names\":[\"web\"]}}\n");
  CHECK(r.status == 0);
}

TEST_CASE("app: --json prints the result as one JSON document") {
  Result r = run({"--json", "status"}, kStatusResponse);
  CHECK(r.request == "{\"id\":1,\"cmd\":\"status\"}\n");  // every member, for scripts
  CHECK(json::parse(r.out) == json::parse(kStatusResponse)["result"]);
  CHECK(r.out.find("\n  {") != std::string::npos);  // indented for people too
  CHECK(r.status == 3);
}

TEST_CASE("app: status --json prints every member, the table only what it shows") {
  const std::string full =
      R"j({"id":1,"ok":true,"result":[{"command":["/bin/web","--port","80"],"last_exit":null,)j"
      R"j("log_error":"disk full","name":"web","pid":9,"reason":null,"restarts":0,)j"
      R"j("since":1795341474.4,"state":"running","stderr":null,"stdout":"/l/web.out.log",)j"
      R"j("uptime":2.5,"wanted":"up"}]})j"
      "\n";
  Result r = run({"--json", "status"}, full);
  CHECK(json::parse(r.out) == json::parse(full)["result"]);
  r = run({"status"}, full);
  CHECK(r.out ==
        "NAME  STATE    PID  UPTIME  RESTARTS  NOTE\n"
        "web   running  9    2s      0         log: disk full\n");
  CHECK(r.status == 0);
}

TEST_CASE("app: a failed start names the log on stderr and exits 1") {
  Result r =
      run({"start", "db", "web"},
          R"j({"id":1,"ok":false,"error":{"code":"failed","message":"web: exited with )j"
          R"j(status 1 after 0.2s (see /var/log/vigil/web.err.log)","jobs":[)j"
          R"j({"name":"db","ok":true,"state":"running","pid":7,"message":"running","log":null},)j"
          R"j({"name":"web","ok":false,"state":"backoff","pid":null,)j"
          R"j("message":"exited with status 1 after 0.2s","log":"/var/log/vigil/web.err.log"}]}})j"
          "\n");
  CHECK(r.request == "{\"id\":1,\"cmd\":\"start\",\"args\":{\"names\":[\"db\",\"web\"]}}\n");
  CHECK(r.out == "db: running (pid 7)\n");
  CHECK(r.err ==
        "vigilctl: web: exited with status 1 after 0.2s (see /var/log/vigil/web.err.log)\n");
  CHECK(r.status == 1);
}

TEST_CASE("app: --json on an error prints the error object too") {
  Result r = run(
      {"--json", "stop", "wbe"},
      R"j({"id":1,"ok":false,"error":{"code":"not_found","message":"no job named 'wbe' (did you mean 'web'?)"}})j"
      "\n");
  CHECK(json::parse(r.out) ==
        json{{"code", "not_found"}, {"message", "no job named 'wbe' (did you mean 'web'?)"}});
  CHECK(r.err == "vigilctl: no job named 'wbe' (did you mean 'web'?)\n");
  CHECK(r.status == 1);
}

TEST_CASE("app: a reload with a bad config prints each error and exits 1") {
  Result r = run({"reload"},
                 R"j({"id":1,"ok":false,"error":{"code":"config_error","message":"config not )j"
                 R"j(loaded, nothing changed: 1 error","errors":["/etc/vigil/vigil.yaml:4:3: )j"
                 R"j(jobs.web: unknown key 'comand' (did you mean 'command'?)"]}})j"
                 "\n");
  CHECK(r.out == "");
  CHECK(r.err ==
        "vigilctl: config not loaded, nothing changed: 1 error\n"
        "/etc/vigil/vigil.yaml:4:3: jobs.web: unknown key 'comand' (did you mean 'command'?)\n");
  CHECK(r.status == 1);
}

TEST_CASE("app: events print one line each until vigild goes away") {
  Result r = run({"events"},
                 "{\"id\":1,\"ok\":true,\"result\":{\"subscribed\":true}}\n"
                 "{\"id\":1,\"event\":\"state\",\"job\":\"web\",\"from\":\"starting\",\"to\":"
                 "\"running\",\"pid\":123,\"exit\":null,\"reason\":null,\"time\":1795341600.123}\n"
                 "{\"id\":1,\"event\":\"future-kind\",\"x\":1}\n"
                 "{\"id\":1,\"event\":\"state\",\"job\":\"web\",\"from\":\"running\",\"to\":"
                 "\"stopping\",\"pid\":123,\"exit\":null,\"reason\":null,\"time\":1795341601}\n");
  CHECK(r.out ==
        "2026-11-22T10:00:00.123Z web starting -> running (pid 123)\n"
        "2026-11-22T10:00:01.000Z web running -> stopping (pid 123)\n");
  CHECK(r.err == "vigilctl: vigild closed the connection\n");
  CHECK(r.status == 1);
}

TEST_CASE("app: logs -f --json is JSON Lines: the result, then each event") {
  Result r = run({"--json", "logs", "-f", "web"},
                 "{\"id\":1,\"ok\":true,\"result\":{\"name\":\"web\",\"stream\":\"stdout\","
                 "\"path\":\"/l\",\"text\":\"a\\n\"}}\n"
                 "{\"id\":1,\"event\":\"log\",\"name\":\"web\",\"stream\":\"stdout\",\"text\":"
                 "\"b\\n\"}\n");
  CHECK(r.request ==
        "{\"id\":1,\"cmd\":\"logs\",\"args\":{\"follow\":true,\"lines\":10,\"name\":"
        "\"web\",\"stream\":\"stdout\"}}\n");
  CHECK(r.out ==
        "{\"name\":\"web\",\"path\":\"/l\",\"stream\":\"stdout\",\"text\":\"a\\n\"}\n"
        "{\"event\":\"log\",\"id\":1,\"name\":\"web\",\"stream\":\"stdout\",\"text\":\"b\\n\"}\n");
}

TEST_CASE("app: logs -f ends with 0 and a note when vigild ends the stream") {
  // vigild then keeps the connection open (it may serve other requests on it): the end
  // event alone must end the command. (Closed after it here, so that a vigilctl that
  // missed it fails rather than hangs.)
  const std::string lines =
      "{\"id\":1,\"ok\":true,\"result\":{\"name\":\"web\",\"stream\":\"stdout\","
      "\"path\":\"/l\",\"text\":\"a\\n\"}}\n"
      "{\"id\":1,\"event\":\"log\",\"name\":\"web\",\"stream\":\"stdout\",\"text\":"
      "\"last\\n\"}\n"
      "{\"id\":1,\"event\":\"end\",\"name\":\"web\",\"reason\":\"job web was removed by a "
      "reload\"}\n";
  Result r = run({"logs", "-f", "web"}, lines);
  CHECK(r.out == "a\nlast\n");
  CHECK(r.err == "vigilctl: job web was removed by a reload; nothing more follows\n");
  CHECK(r.status == 0);
  // With --json the end is a line of the output like any event, and the note still goes
  // to stderr.
  r = run({"--json", "logs", "-f", "web"}, lines);
  CHECK(r.out.find("{\"event\":\"end\",\"id\":1,\"name\":\"web\",\"reason\":\"job web was "
                   "removed by a reload\"}\n") != std::string::npos);
  CHECK(r.err == "vigilctl: job web was removed by a reload; nothing more follows\n");
  CHECK(r.status == 0);
}

TEST_CASE("app: logs prints the text as it is") {
  Result r = run({"logs", "-n", "2", "web"},
                 "{\"id\":1,\"ok\":true,\"result\":{\"name\":\"web\",\"stream\":\"stdout\","
                 "\"path\":\"/l\",\"text\":\"one\\ntwo\\n\"}}\n");
  CHECK(r.out == "one\ntwo\n");
  CHECK(r.status == 0);
}

TEST_CASE("app: logs says where the rest is when the answer was cut short") {
  Result r = run({"logs", "-n", "100000000", "web"},
                 "{\"id\":1,\"ok\":true,\"result\":{\"name\":\"web\",\"stream\":\"stdout\","
                 "\"path\":\"/l/web.out.log\",\"text\":\"last\\n\",\"truncated\":true}}\n");
  CHECK(r.out == "last\n");
  CHECK(r.err == "vigilctl: only the end of the log fits in one answer; all of it is in /l/web.out.log\n");
  CHECK(r.status == 0);
}

TEST_CASE("app: logs -f ends quietly with 0 when stdout's reader is gone") {
  // The daemon stays connected and sends nothing more: vigilctl must notice the closed
  // pipe by itself rather than wait for the next line to fail writing.
  Result r = run({"logs", "-f", "web"},
                 "{\"id\":1,\"ok\":true,\"result\":{\"name\":\"web\",\"stream\":\"stdout\","
                 "\"path\":\"/l\",\"text\":\"\"}}\n",
                 /*close_after=*/false, /*stdout_reader_gone=*/true);
  CHECK(r.err == "");
  CHECK(r.status == 0);
}

TEST_CASE("app: a write to a closed stdout ends a stream quietly with 0") {
  Result r = run({"events"},
                 "{\"id\":1,\"ok\":true,\"result\":{\"subscribed\":true}}\n"
                 "{\"id\":1,\"event\":\"state\",\"job\":\"web\",\"from\":\"a\",\"to\":\"b\"}\n",
                 /*close_after=*/false, /*stdout_reader_gone=*/true);
  CHECK(r.err == "");
  CHECK(r.status == 0);
}

TEST_CASE("app: shutdown waits until vigild has gone") {
  Result r = run({"shutdown"}, "{\"id\":1,\"ok\":true,\"result\":{}}\n");
  CHECK(r.request == "{\"id\":1,\"cmd\":\"shutdown\"}\n");
  CHECK(r.out == "vigild is shutting down\n");
  CHECK(r.status == 0);
}

TEST_CASE("app: plain results of the other commands") {
  CHECK(run({"reopen-logs"}, "{\"id\":1,\"ok\":true,\"result\":{}}\n").out ==
        "log files reopened\n");
  CHECK(
      run({"version"}, "{\"id\":1,\"ok\":true,\"result\":{\"version\":\"0.1.0\",\"protocol\":1}}\n")
          .out == "vigilctl 0.1.0\nvigild 0.1.0 (protocol 1)\n");
  CHECK(run({"signal", "HUP", "web"},
            "{\"id\":1,\"ok\":true,\"result\":[{\"name\":\"web\",\"pid\":5,\"signal\":\"HUP\"}]}\n")
            .out == "web: sent HUP to pid 5\n");
  CHECK(run({"reload"},
            "{\"id\":1,\"ok\":true,\"result\":{\"added\":[\"n\"],\"changed\":[],\"removed\":[],"
            "\"unchanged\":[\"a\",\"b\"]}}\n")
            .out == "added: n\nunchanged: 2 jobs\n");
}

TEST_CASE("app: a daemon that hangs up without answering, or answers garbage") {
  Result closed = run({"status"}, "");
  CHECK(closed.err == "vigilctl: vigild closed the connection without answering\n");
  CHECK(closed.status == 1);

  Result garbage = run({"status"}, "hello\n");
  CHECK(garbage.err.rfind("vigilctl: malformed response from vigild: malformed JSON: ", 0) == 0);
  CHECK(garbage.status == 1);
}

TEST_CASE("app: the busy refusal is shown even when it came before the request") {
  Result r = run({"status"},
                 "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":\"too many "
                 "clients (1024)\"}}\n");
  CHECK(r.err == "vigilctl: too many clients (1024)\n");
  CHECK(r.status == 1);
}

TEST_CASE("app: Ctrl-C ends a wait quietly with 130") {
  // The daemon stays connected and silent: without the flag this would block forever.
  Result r = run({"events"}, "", /*close_after=*/false, /*stdout_reader_gone=*/false,
                 /*ctrl_c=*/true);
  CHECK(r.request == "{\"id\":1,\"cmd\":\"events\"}\n");
  CHECK(r.out == "");
  CHECK(r.err == "");
  CHECK(r.status == 130);
}

TEST_CASE("app: logs ends an unfinished last line, unless following") {
  const std::string response =
      "{\"id\":1,\"ok\":true,\"result\":{\"name\":\"web\",\"stream\":\"stdout\","
      "\"path\":\"/l\",\"text\":\"done\\nhalf\"}}\n";
  CHECK(run({"logs", "web"}, response).out == "done\nhalf\n");
  CHECK(run({"logs", "-f", "web"}, response).out == "done\nhalf");
}
