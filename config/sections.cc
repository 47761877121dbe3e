// The keys of `supervisor:`, of each job and of `include:`: which keys exist, what each
// one accepts, and how each is checked. The tables of known keys here are also what the
// "did you mean" suggestions are drawn from.
#include "sections.h"

#include <charconv>
#include <climits>
#include <cmath>

#include "internal.h"
#include "values.h"

namespace vigil::config::internal {
namespace {

const std::vector<std::string> kSupervisorKeys = {
    "socket",  "socket_mode", "socket_group",     "pidfile", "log",
    "log_dir", "umask",       "shutdown_timeout", "include",
};

const std::vector<std::string> kJobKeys = {
    "command",        "cwd",
    "umask",          "env",
    "user",           "group",
    "stdout",         "stderr",
    "log_max_size",   "log_backups",
    "log_timestamps", "autostart",
    "restart",        "success_exit_codes",
    "start_seconds",  "start_retries",
    "backoff",        "stop_signal",
    "stop_timeout",   "kill_group",
};

const std::vector<std::string> kBackoffKeys = {"initial", "max", "factor"};

const std::vector<std::string> kRestartPolicies = {"always", "on-failure", "never"};

// Job names appear in file names, on command lines and in the protocol: a small safe
// alphabet keeps all three simple.
constexpr std::size_t kMaxJobName = 64;

bool is_job_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '@' || c == '-';
}

bool is_env_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
      return false;
    }
  }
  return true;
}

void check_job_name(Reader& reader, const Entry& entry) {
  const std::string& name = entry.name;
  const Location at = reader.key_at(entry);
  bool valid = !name.empty();
  for (char c : name) valid = valid && is_job_name_char(c);
  if (!valid) {
    reader.error(at, "jobs",
                 quote(name) + " is not a valid job name (expected letters, digits, _ . @ or -)");
  } else if (name.size() > kMaxJobName) {
    reader.error(at, "jobs",
                 quote(name) + " is too long for a job name (expected at most 64 characters)");
  } else if (name == "all") {
    reader.error(at, "jobs",
                 "\"all\" is reserved: vigilctl uses it to mean every job (expected another "
                 "name)");
  }
}

void read_command(Reader& reader, const Entry& entry, JobSpec& job) {
  if (entry.value.IsScalar()) {
    std::optional<std::string> command = reader.expanded(entry, "a command");
    if (!command) return;
    if (command->find_first_not_of(" \t\r\n") == std::string::npos) {
      if (entry.value.Scalar().find_first_not_of(" \t\r\n") == std::string::npos) {
        reader.expected(entry, "a command");
      } else {
        reader.error(
            reader.value_at(entry), entry.path,
            quote(entry.value.Scalar()) + " expands to an empty string (expected a command)");
      }
      return;
    }
    job.argv = {"/bin/sh", "-c", *command};
    job.shell = true;
    return;
  }
  if (!entry.value.IsSequence()) {
    reader.expected(entry, "a list of strings or a string");
    return;
  }
  const std::vector<Entry> items = reader.elements(entry);
  if (items.empty()) {
    reader.expected(entry, "a non-empty list of strings");
    return;
  }
  std::vector<std::string> argv;
  bool ok = true;
  for (const Entry& item : items) {
    std::optional<std::string> arg = reader.expanded(item, "a string");
    if (!arg) {
      ok = false;
      continue;
    }
    if (argv.empty() && arg->empty()) {
      if (item.value.Scalar().empty()) {
        reader.expected(item, "a program");
      } else {
        reader.error(
            reader.value_at(item), item.path,
            quote(item.value.Scalar()) + " expands to an empty string (expected a program)");
      }
      ok = false;
    }
    argv.push_back(std::move(*arg));
  }
  if (ok) {
    job.argv = std::move(argv);
    job.shell = false;
  }
}

void read_env(Reader& reader, const Entry& entry,
              std::vector<std::pair<std::string, std::string>>& env) {
  for (const Entry& var : reader.entries(entry, "a mapping of NAME: value")) {
    if (!is_env_name(var.name)) {
      reader.error(reader.key_at(var), entry.path,
                   quote(var.name) +
                       " is not a valid variable name (expected letters, digits and _, not "
                       "starting with a digit)");
      continue;
    }
    if (var.value.IsNull()) {
      reader.error(
          reader.value_at(var), var.path,
          "expected a string, got " + reader.describe(var) + " (write \"\" for an empty value)");
      continue;
    }
    if (std::optional<std::string> value = reader.expanded(var, "a string")) {
      env.emplace_back(var.name, std::move(*value));
    }
  }
}

// A user or group name, or a numeric id. Returns the name when it is well formed.
std::optional<std::string> read_account_name(Reader& reader, const Entry& entry, bool group,
                                             std::optional<unsigned long>* numeric) {
  const char* what = group ? "a group name or gid" : "a user name or uid";
  std::optional<std::string> name = reader.scalar(entry, what);
  if (!name) return std::nullopt;
  if (name->empty() || name->find('\0') != std::string::npos) {
    reader.expected(entry, what);
    return std::nullopt;
  }
  if (all_digits(*name)) {
    unsigned long id = 0;
    const auto [end, ec] = std::from_chars(name->data(), name->data() + name->size(), id);
    // (uid_t)-1 means "no change" to setuid and friends, so it is not a usable id.
    if (ec != std::errc() || end != name->data() + name->size() || id >= 4294967295UL) {
      reader.expected(entry, group ? "a group name or a gid below 4294967295"
                                   : "a user name or a uid below 4294967295");
      return std::nullopt;
    }
    *numeric = id;
  }
  return name;
}

void check_account_exists(Reader& reader, const Entry& entry, const std::string& name, bool group) {
  const bool exists = group ? find_group(name).has_value() : find_user(name).has_value();
  if (!exists) {
    reader.error(reader.value_at(entry), entry.path,
                 std::string("no ") + (group ? "group" : "user") + " named " + quote(name) +
                     " on this system (expected an existing " +
                     (group ? "group name or a numeric gid)" : "user name or a numeric uid)"));
  }
}

void read_job_account(Reader& reader, const Entry& entry, bool group,
                      std::optional<std::string>& out) {
  std::optional<unsigned long> numeric;
  std::optional<std::string> name = read_account_name(reader, entry, group, &numeric);
  if (!name) return;
  out = *name;
  const Environment& env = reader.env();
  if (env.uid != 0) {
    // Without root, vigild can only run jobs as itself; naming yourself is harmless.
    bool self;
    if (!group) {
      const std::optional<uid_t> uid = numeric ? std::optional<uid_t>(*numeric) : find_user(*name);
      self = uid == env.uid;
    } else {
      const std::optional<gid_t> primary = primary_group_of(env.uid);
      const std::optional<gid_t> gid = numeric ? std::optional<gid_t>(*numeric) : find_group(*name);
      self = primary && gid == primary;
    }
    if (!self) {
      reader.error(reader.value_at(entry), entry.path,
                   std::string("running a job ") + (group ? "with group " : "as ") + quote(*name) +
                       " needs vigild to run as root");
    }
    return;
  }
  if (env.check_accounts && !numeric) check_account_exists(reader, entry, *name, group);
}

void read_output(Reader& reader, const Entry& entry, bool is_stderr, Output& out) {
  // `stdout: null` reads as "nowhere" to anyone, so a YAML null written out counts like
  // the string "null"; a key left empty is more likely a slip and is reported.
  if (entry.value.IsNull() && reader.source().explicit_null(entry.value)) {
    out = {Output::Kind::discard, ""};
    return;
  }
  const char* what = is_stderr ? "a path, \"null\" or \"stdout\"" : "a path or \"null\"";
  if (!entry.value.IsScalar() || entry.value.Scalar().empty()) {
    reader.expected(entry, what);
    return;
  }
  const std::string& raw = entry.value.Scalar();
  if (raw == "null") {
    out = {Output::Kind::discard, ""};
  } else if (is_stderr && raw == "stdout") {
    out = {Output::Kind::merge, ""};
  } else if (!is_stderr && raw == "stderr") {
    reader.error(reader.value_at(entry), entry.path,
                 "\"stderr\" is not allowed here (expected a path or \"null\"; to send both "
                 "streams to one place write stderr: stdout)");
  } else if (std::optional<std::string> path = reader.path(entry)) {
    out = {Output::Kind::file, *path};
  }
}

void read_restart(Reader& reader, const Entry& entry, RestartPolicy& out) {
  if (entry.value.IsScalar()) {
    const std::string& text = entry.value.Scalar();
    if (text == "always") return void(out = RestartPolicy::always);
    if (text == "on-failure") return void(out = RestartPolicy::on_failure);
    if (text == "never") return void(out = RestartPolicy::never);
  }
  std::string message = "expected always, on-failure or never, got " + reader.describe(entry);
  if (entry.value.IsScalar()) {
    if (auto suggestion = did_you_mean(entry.value.Scalar(), kRestartPolicies)) {
      message += " (did you mean \"" + *suggestion + "\"?)";
    }
  }
  reader.error(reader.value_at(entry), entry.path, message);
}

void read_exit_codes(Reader& reader, const Entry& entry, std::vector<int>& out) {
  const char* what = "an exit code from 0 to 255";
  if (entry.value.IsScalar()) {
    if (auto code = reader.integer(entry, 0, 255, what)) out = {static_cast<int>(*code)};
    return;
  }
  if (!entry.value.IsSequence()) {
    reader.expected(entry, "an exit code from 0 to 255 or a list of them");
    return;
  }
  const std::vector<Entry> items = reader.elements(entry);
  if (items.empty()) {
    reader.expected(entry, "at least one exit code");
    return;
  }
  std::vector<int> codes;
  for (const Entry& item : items) {
    if (auto code = reader.integer(item, 0, 255, what)) codes.push_back(static_cast<int>(*code));
  }
  if (codes.size() == items.size()) out = std::move(codes);
}

void read_backoff(Reader& reader, const Entry& entry, Backoff& out) {
  std::optional<Location> initial_at, max_at;
  bool ok = true;
  for (const Entry& item : reader.entries(entry, "a mapping with initial, max and factor")) {
    if (item.name == "initial" || item.name == "max") {
      std::optional<Duration> value = reader.duration(item);
      if (!value) {
        ok = false;
        continue;
      }
      (item.name == "initial" ? out.initial : out.max) = *value;
      (item.name == "initial" ? initial_at : max_at) = reader.value_at(item);
    } else if (item.name == "factor") {
      double factor = 0;
      bool good = false;
      if (item.value.IsScalar()) {
        const std::string& text = item.value.Scalar();
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), factor);
        good = ec == std::errc() && end == text.data() + text.size() && !text.empty() &&
               std::isfinite(factor) && factor >= 1;
      }
      if (good) {
        out.factor = factor;
      } else {
        reader.expected(item, "a number of 1 or more");
      }
    } else {
      reader.unknown_key(item, entry.path, kBackoffKeys);
    }
  }
  if (ok && out.initial > out.max) {
    const Location at = initial_at ? *initial_at : max_at ? *max_at : reader.value_at(entry);
    reader.error(at, entry.path,
                 "expected initial <= max, got initial " + format_duration(out.initial) +
                     " and max " + format_duration(out.max));
  }
}

void read_socket_group(Reader& reader, const Entry& entry, std::optional<std::string>& out) {
  std::optional<unsigned long> numeric;
  std::optional<std::string> name = read_account_name(reader, entry, true, &numeric);
  if (!name) return;
  out = *name;
  if (reader.env().check_accounts && !numeric) check_account_exists(reader, entry, *name, true);
}

}  // namespace

void read_supervisor(Reader& reader, const Entry& section, SupervisorSpec& spec,
                     std::vector<IncludeRef>& includes) {
  for (const Entry& entry : reader.entries(section)) {
    const std::string& key = entry.name;
    if (key == "socket") {
      std::optional<std::string> path = reader.path(entry);
      if (!path) continue;
      // sun_path holds 108 bytes including the terminating NUL; bind() would otherwise
      // fail at startup with a bare "File name too long".
      if (path->size() > 107) {
        reader.error(reader.value_at(entry), entry.path,
                     quote(*path) + " is " + std::to_string(path->size()) +
                         " bytes long (expected at most 107, the limit for a Unix socket path)");
        continue;
      }
      spec.socket = *path;
    } else if (key == "socket_mode") {
      if (auto mode = reader.mode(entry)) spec.socket_mode = *mode;
    } else if (key == "socket_group") {
      read_socket_group(reader, entry, spec.socket_group);
    } else if (key == "pidfile") {
      if (auto path = reader.path(entry)) spec.pidfile = *path;
    } else if (key == "log") {
      if (auto path = reader.path(entry)) spec.log = *path;
    } else if (key == "log_dir") {
      if (auto path = reader.path(entry)) spec.log_dir = *path;
    } else if (key == "umask") {
      if (auto mode = reader.mode(entry)) spec.umask = *mode;
    } else if (key == "shutdown_timeout") {
      if (auto duration = reader.duration(entry)) spec.shutdown_timeout = *duration;
    } else if (key == "include") {
      spec.include.clear();
      includes = read_include(reader, entry, &spec.include);
    } else {
      reader.unknown_key(entry, section.path, kSupervisorKeys);
    }
  }
}

JobDraft read_job(Reader& reader, const Entry& entry) {
  JobDraft draft;
  JobSpec& job = draft.spec;
  job.name = entry.name;
  job.defined_at = reader.key_at(entry);
  check_job_name(reader, entry);
  if (!entry.value.IsMap() && !entry.value.IsNull()) {
    reader.expected(entry, "a mapping of the job's settings");
    return draft;
  }
  bool have_command = false;
  for (const Entry& item : reader.entries(entry)) {
    const std::string& key = item.name;
    if (key == "command") {
      have_command = true;
      read_command(reader, item, job);
    } else if (key == "cwd") {
      if (auto path = reader.path(item)) job.cwd = *path;
    } else if (key == "umask") {
      if (auto mode = reader.mode(item)) job.umask = *mode;
    } else if (key == "env") {
      read_env(reader, item, job.env);
    } else if (key == "user") {
      read_job_account(reader, item, false, job.user);
    } else if (key == "group") {
      read_job_account(reader, item, true, job.group);
    } else if (key == "stdout") {
      draft.stdout_given = true;
      read_output(reader, item, false, job.stdout_log);
    } else if (key == "stderr") {
      draft.stderr_given = true;
      draft.stderr_at = reader.value_at(item);
      read_output(reader, item, true, job.stderr_log);
    } else if (key == "log_max_size") {
      if (auto size = reader.size(item)) job.log_max_size = *size;
    } else if (key == "log_backups") {
      if (auto n = reader.integer(item, 0, 1000, "a whole number from 0 to 1000")) {
        job.log_backups = static_cast<int>(*n);
      }
    } else if (key == "log_timestamps") {
      if (auto b = reader.boolean(item)) job.log_timestamps = *b;
    } else if (key == "autostart") {
      if (auto b = reader.boolean(item)) job.autostart = *b;
    } else if (key == "restart") {
      read_restart(reader, item, job.restart);
    } else if (key == "success_exit_codes") {
      read_exit_codes(reader, item, job.success_exit_codes);
    } else if (key == "start_seconds") {
      if (auto duration = reader.duration(item)) job.start_seconds = *duration;
    } else if (key == "start_retries") {
      if (auto n = reader.integer(item, 0, INT_MAX, "a whole number of 0 or more")) {
        job.start_retries = static_cast<int>(*n);
      }
    } else if (key == "backoff") {
      read_backoff(reader, item, job.backoff);
    } else if (key == "stop_signal") {
      if (auto signo = reader.signal(item)) job.stop_signal = *signo;
    } else if (key == "stop_timeout") {
      if (auto duration = reader.duration(item)) job.stop_timeout = *duration;
    } else if (key == "kill_group") {
      if (auto b = reader.boolean(item)) job.kill_group = *b;
    } else {
      reader.unknown_key(item, entry.path, kJobKeys);
    }
  }
  if (!have_command) {
    reader.error(job.defined_at, entry.path,
                 "no command given (expected command: with a list of strings, or a string run "
                 "by /bin/sh -c)");
  }
  return draft;
}

std::vector<IncludeRef> read_include(Reader& reader, const Entry& entry,
                                     std::vector<std::string>* written) {
  std::vector<Entry> items;
  if (entry.value.IsNull()) return {};
  if (entry.value.IsScalar()) {
    items.push_back(entry);
  } else if (entry.value.IsSequence()) {
    items = reader.elements(entry);
  } else {
    reader.expected(entry, "a glob pattern or a list of them");
    return {};
  }
  std::vector<IncludeRef> refs;
  for (const Entry& item : items) {
    if (written && item.value.IsScalar()) written->push_back(item.value.Scalar());
    std::optional<std::string> pattern = reader.expanded(item, "a glob pattern");
    if (!pattern) continue;
    if (pattern->empty()) {
      if (item.value.Scalar().empty()) {
        reader.expected(item, "a glob pattern");
      } else {
        reader.error(
            reader.value_at(item), item.path,
            quote(item.value.Scalar()) + " expands to an empty string (expected a glob pattern)");
      }
      continue;
    }
    refs.push_back({*pattern, reader.value_at(item), item.path});
  }
  return refs;
}

}  // namespace vigil::config::internal
