// The request/response cycle of one vigilctl command and its exit status; rendering
// itself is in render.cc, argument parsing in args.cc.
#include "app.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "render.h"
#include "vigil_version.h"

namespace vigil::ctl {

namespace {

using protocol::json;
using Kind = Connection::Received::Kind;

// Writes everything, or reports that the reader has gone. When stdout is piped into
// `head`, EPIPE is how vigilctl learns that nobody reads any more: a reason to stop
// quietly (SIGPIPE is ignored, so it arrives as an error instead of killing us).
class Output {
 public:
  explicit Output(int fd) : fd_(fd) {}

  bool write(std::string_view s) {
    while (!s.empty() && !gone_) {
      const ssize_t n = ::write(fd_, s.data(), s.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        gone_ = true;
        error_ = errno;
        break;
      }
      s.remove_prefix(static_cast<std::size_t>(n));
    }
    return !gone_;
  }

  bool gone() const { return gone_; }
  // Gone for a reason other than a closed pipe (a full disk, say): worth reporting.
  bool failed() const { return gone_ && error_ != EPIPE; }
  int error() const { return error_; }

 private:
  int fd_;
  bool gone_ = false;
  int error_ = 0;
};

std::string pretty(const json& j) {
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}
std::string compact(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

class Run {
 public:
  Run(const Invocation& inv, Connection& conn, const Terminal& term)
      : inv_(inv), conn_(conn), term_(term), out_(term.out), err_(term.err) {}

  int go() {
    const int status = exchange();
    if (out_.failed()) {
      err_.write("vigilctl: cannot write the output: " + std::string(std::strerror(out_.error())) +
                 "\n");
      return exit_code::failed;
    }
    return status;
  }

 private:
  bool interrupted() const { return term_.interrupted != nullptr && *term_.interrupted != 0; }
  bool json_output() const { return inv_.global.json; }
  // The members of the answer's status objects that the output shows (empty: all). The
  // table needs 8 of 13; the rest of each object is read past, never built.
  std::span<const std::string_view> needed_fields() const {
    if (inv_.command == "status" && !json_output()) return kStatusTableFields;
    return {};
  }
  bool streaming() const {
    return inv_.command == "events" ||
           (inv_.command == "logs" && inv_.request.args.value("follow", false));
  }

  int exchange() {
    // Asking only for the members the output shows makes the answer a third of the size
    // (status of 1000 jobs: 130 KB instead of 410 KB), for vigild to write and us to read.
    // A vigild from before `fields` refuses the argument: then it is asked again without.
    protocol::Request request = inv_.request;
    if (const auto fields = needed_fields(); !fields.empty()) {
      request.args["fields"] = std::vector<std::string>(fields.begin(), fields.end());
    }
    protocol::Message response;
    for (;;) {
      if (int failed = ask(request, response); failed != exit_code::ok) return failed;
      const bool fields_refused =
          !response.ok && response.error.code == protocol::code::bad_request &&
          response.error.message.find("unknown argument 'fields'") != std::string::npos;
      if (!fields_refused || !request.args.contains("fields")) break;
      request.args.erase("fields");
    }

    if (!response.ok) return refused(response.error);
    const int status = show(response.result);
    if (out_.gone()) return status;
    if (streaming()) return follow();
    if (inv_.command == "shutdown") return wait_for_exit();
    return status;
  }

  // Sends `request` and reads until its response: exit_code::ok with `response` set, or
  // the exit status of a failure that has been reported.
  int ask(const protocol::Request& request, protocol::Message& response) {
    // A daemon that turned us away (too many clients) may have hung up before reading the
    // request; its reason is then already waiting to be read, so read before giving up.
    const std::optional<std::string> send_error = conn_.send(request);
    for (bool answered = false; !answered;) {
      // A Ctrl-C that landed outside poll() (while writing, say) interrupted nothing.
      if (interrupted()) return exit_code::interrupted;
      auto r = conn_.receive(-1, needed_fields());
      switch (r.kind) {
        case Kind::message:
          // Events belong to a stream that starts with the response; none come before it.
          if (!r.message.event) {
            response = std::move(r.message);
            answered = true;
          }
          break;
        case Kind::interrupted:
          if (interrupted()) return exit_code::interrupted;
          break;
        case Kind::closed:
          err_.write("vigilctl: vigild closed the connection without answering" +
                     (send_error ? " (" + *send_error + ")" : std::string()) + "\n");
          return exit_code::failed;
        case Kind::output_closed:  // not watched here
        case Kind::error:
          err_.write("vigilctl: " + r.error + "\n");
          return exit_code::failed;
      }
    }
    return exit_code::ok;
  }

  int refused(const protocol::Error& e) {
    if (json_output()) {
      json obj = e.details.is_object() ? e.details : json::object();
      obj["code"] = e.code;
      obj["message"] = e.message;
      out_.write(pretty(obj) + "\n");
    } else {
      out_.write(render_failed_successes(e));
    }
    err_.write(render_error(e));
    return exit_code::failed;
  }

  // Prints the result of the response; returns the exit status it implies.
  int show(const json& result) {
    const std::string& c = inv_.command;
    const int status = c == "status" ? status_exit_code(result) : exit_code::ok;
    if (json_output()) {
      // A stream's output is JSON Lines (the result, then one event per line); anything
      // else is one indented document.
      out_.write((streaming() ? compact(result) : pretty(result)) + "\n");
      return status;
    }
    if (c == "status") {
      out_.write(render_status_table(result, term_.color));
    } else if (c == "start" || c == "stop" || c == "restart") {
      out_.write(render_outcomes(result));
    } else if (c == "signal") {
      out_.write(render_signal(result));
    } else if (c == "logs") {
      if (result.is_object() && result.value("text", json()).is_string()) {
        std::string text = result["text"].get<std::string>();
        // A last line still being written has no newline yet. Without -f nothing follows
        // it, so end it here rather than leave the shell prompt glued to it.
        if (!streaming() && !text.empty() && text.back() != '\n') text += '\n';
        out_.write(text);
        if (result.value("truncated", false)) {
          err_.write("vigilctl: only the end of the log fits in one answer; all of it is in " +
                     result.value("path", std::string("the log file")) + "\n");
        }
        // A log that does not exist yet is an empty one (the job has written nothing);
        // said on stderr so that it is not taken for a log that is really empty. With -f,
        // what the job writes next is shown anyway, and the note would only be noise.
        if (!streaming() && result.value("missing", false)) {
          err_.write("vigilctl: " + result.value("name", std::string("the job")) +
                     " has logged nothing yet: " +
                     result.value("path", std::string("the log file")) + " does not exist\n");
        }
      }
    } else if (c == "reload") {
      out_.write(render_reload(result));
    } else if (c == "reopen-logs") {
      out_.write("log files reopened\n");
    } else if (c == "shutdown") {
      out_.write("vigild is shutting down\n");
    } else if (c == "version") {
      out_.write(render_version(VIGIL_VERSION, result));
    }
    return status;
  }

  // Prints the events of a stream until Ctrl-C, the reader of stdout goes, or the daemon
  // does.
  int follow() {
    for (;;) {
      if (interrupted()) return exit_code::interrupted;
      auto r = conn_.receive(term_.out);
      switch (r.kind) {
        case Kind::message:
          if (r.message.event) print_event(*r.message.event, r.message);
          if (out_.gone()) return exit_code::ok;
          // vigild ended the stream (the job was removed, vigild is exiting): nothing is
          // wrong, and nothing more will come.
          if (r.message.event == "end") return ended(r.message.result);
          break;
        case Kind::interrupted:
          if (interrupted()) return exit_code::interrupted;
          break;
        case Kind::output_closed:
          return exit_code::ok;
        case Kind::closed:
          err_.write("vigilctl: vigild closed the connection\n");
          return exit_code::failed;
        case Kind::error:
          err_.write("vigilctl: " + r.error + "\n");
          return exit_code::failed;
      }
    }
  }

  int ended(const json& event) {
    const json& reason = event.is_object() ? event.value("reason", json()) : json();
    err_.write("vigilctl: " +
               (reason.is_string() ? reason.get<std::string>() : std::string("the stream ended")) +
               "; nothing more follows\n");
    return exit_code::ok;
  }

  void print_event(const std::string& kind, const protocol::Message& m) {
    if (json_output()) {
      json obj = m.result.is_object() ? m.result : json::object();
      obj["id"] = m.id;
      obj["event"] = kind;
      out_.write(compact(obj) + "\n");
    } else if (kind == "log") {
      const json& t = m.result.is_object() ? m.result.value("text", json()) : json();
      if (t.is_string()) out_.write(t.get<std::string>());
    } else if (kind == "state") {
      out_.write(render_state_event(m.result));
    }
    // Other kinds are for newer clients; skipping them keeps this one working.
  }

  // After `shutdown`, the daemon closes every connection as it exits: waiting for that
  // lets `vigilctl shutdown && vigild` start the next daemon without a race.
  int wait_for_exit() {
    for (;;) {
      if (interrupted()) return exit_code::interrupted;
      auto r = conn_.receive();
      switch (r.kind) {
        case Kind::closed:
          return exit_code::ok;
        case Kind::interrupted:
          if (interrupted()) return exit_code::interrupted;
          break;
        case Kind::message:
        case Kind::output_closed:
          break;
        case Kind::error:
          err_.write("vigilctl: " + r.error + "\n");
          return exit_code::failed;
      }
    }
  }

  const Invocation& inv_;
  Connection& conn_;
  const Terminal& term_;
  Output out_;
  Output err_;
};

}  // namespace

int run_command(const Invocation& inv, Connection& conn, const Terminal& term) {
  return Run(inv, conn, term).go();
}

}  // namespace vigil::ctl
