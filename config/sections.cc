// The keys of `supervisor:`, of each job and of `include:`: which keys exist, what each
// one accepts, and how each is checked. Each section is read from one table of its keys
// and their handlers, and that table is all there is: the "did you mean" suggestions and
// config::known_keys() (which the docs test checks the man page against) list its names.
#include "sections.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <iterator>

#include "internal.h"
#include "values.h"

namespace vigil::config::internal {
namespace {

// One key of a section and how its value is read into the section's `Target`.
template <typename Target>
struct Key {
  std::string_view name;
  void (*read)(Reader& reader, const Entry& entry, Target& target);
};

// Reads each of `entries` with the handler of its key in `keys`; the others are reported
// as unknown keys of the mapping at `path`, with a suggestion drawn from `keys`.
template <typename Target, std::size_t N>
void read_keys(Reader& reader, const std::vector<Entry>& entries, std::string_view path,
               const Key<Target> (&keys)[N], Target& target) {
  for (const Entry& entry : entries) {
    const auto key = std::find_if(std::begin(keys), std::end(keys),
                                  [&](const Key<Target>& k) { return k.name == entry.name; });
    if (key != std::end(keys)) {
      key->read(reader, entry, target);
    } else {
      reader.unknown_key(entry, path, names_of(keys));
    }
  }
}

// The handler of a key whose value is one of the Reader's typed values: reader.*Read(entry),
// stored as it is in the field `Field` of target.spec.
template <auto Read, auto Field, typename Target>
void assign(Reader& reader, const Entry& entry, Target& target) {
  if (auto value = (reader.*Read)(entry)) target.spec.*Field = *value;
}

// The handler of a key whose value has a reader of its own here: Read(reader, entry, out),
// into the field `Field` of target.spec.
template <auto Read, auto Field, typename Target>
void read_into(Reader& reader, const Entry& entry, Target& target) {
  Read(reader, entry, target.spec.*Field);
}

// The values of a job's restart:, and the policy each stands for.
struct RestartName {
  std::string_view name;
  RestartPolicy policy;
};

constexpr RestartName kRestartPolicies[] = {
    {"always", RestartPolicy::always},
    {"on-failure", RestartPolicy::on_failure},
    {"never", RestartPolicy::never},
};

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

void read_user(Reader& reader, const Entry& entry, std::optional<std::string>& out) {
  read_job_account(reader, entry, false, out);
}

void read_group(Reader& reader, const Entry& entry, std::optional<std::string>& out) {
  read_job_account(reader, entry, true, out);
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
    for (const RestartName& known : kRestartPolicies) {
      if (entry.value.Scalar() == known.name) return void(out = known.policy);
    }
  }
  std::string message = "expected always, on-failure or never, got " + reader.describe(entry);
  if (entry.value.IsScalar()) {
    if (auto suggestion = did_you_mean(entry.value.Scalar(), names_of(kRestartPolicies))) {
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

// A backoff: mapping as it is read: the values, and where initial and max were written,
// so that initial > max can be reported at one of them once both are known.
struct BackoffDraft {
  Backoff& spec;
  std::optional<Location> initial_at = std::nullopt;
  std::optional<Location> max_at = std::nullopt;
  bool ok = true;  // false once initial or max could not be read: then they are not compared
};

void read_backoff_bound(Reader& reader, const Entry& item, Duration& out,
                        std::optional<Location>& at, bool& ok) {
  std::optional<Duration> value = reader.duration(item);
  if (!value) {
    ok = false;
    return;
  }
  out = *value;
  at = reader.value_at(item);
}

void read_backoff_factor(Reader& reader, const Entry& item, BackoffDraft& draft) {
  double factor = 0;
  bool good = false;
  if (item.value.IsScalar()) {
    const std::string& text = item.value.Scalar();
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), factor);
    good = ec == std::errc() && end == text.data() + text.size() && !text.empty() &&
           std::isfinite(factor) && factor >= 1;
  }
  if (good) {
    draft.spec.factor = factor;
  } else {
    reader.expected(item, "a number of 1 or more");
  }
}

void read_backoff_initial(Reader& reader, const Entry& item, BackoffDraft& draft) {
  read_backoff_bound(reader, item, draft.spec.initial, draft.initial_at, draft.ok);
}

void read_backoff_max(Reader& reader, const Entry& item, BackoffDraft& draft) {
  read_backoff_bound(reader, item, draft.spec.max, draft.max_at, draft.ok);
}

constexpr Key<BackoffDraft> kBackoffKeys[] = {
    {"initial", read_backoff_initial},
    {"max", read_backoff_max},
    {"factor", read_backoff_factor},
};

void read_backoff(Reader& reader, const Entry& entry, Backoff& out) {
  BackoffDraft draft{out};
  read_keys(reader, reader.entries(entry, "a mapping with initial, max and factor"), entry.path,
            kBackoffKeys, draft);
  if (draft.ok && out.initial > out.max) {
    const Location at = draft.initial_at ? *draft.initial_at
                        : draft.max_at   ? *draft.max_at
                                         : reader.value_at(entry);
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

// What the keys of `supervisor:` read into.
struct SupervisorDraft {
  SupervisorSpec& spec;
  SupervisorSites& sites;
  std::vector<IncludeRef>& includes;
};

// The handler of a path of the supervisor's: stored in `Field`, its place in `Site`
// (for the messages about two settings naming one file).
template <auto Field, auto Site>
void read_supervisor_path(Reader& reader, const Entry& entry, SupervisorDraft& draft) {
  if (std::optional<std::string> path = reader.path(entry)) {
    draft.spec.*Field = *path;
    draft.sites.*Site = reader.value_at(entry);
  }
}

std::optional<std::string> socket_path(Reader& reader, const Entry& entry) {
  std::optional<std::string> path = reader.path(entry);
  if (!path) return std::nullopt;
  // sun_path holds 108 bytes including the terminating NUL; bind() would otherwise
  // fail at startup with a bare "File name too long".
  if (path->size() > 107) {
    reader.error(reader.value_at(entry), entry.path,
                 quote(*path) + " is " + std::to_string(path->size()) +
                     " bytes long (expected at most 107, the limit for a Unix socket path)");
    return std::nullopt;
  }
  return path;
}

void read_socket(Reader& reader, const Entry& entry, SupervisorDraft& draft) {
  if (std::optional<std::string> path = socket_path(reader, entry)) {
    draft.spec.socket = *path;
    draft.sites.socket = reader.value_at(entry);
  }
}

// The one entry named `name` among `entries`, or std::nullopt. One written twice is
// reported (and std::nullopt), since which of the two counts is anyone's guess.
std::optional<Entry> only_entry(Reader& reader, const std::vector<Entry>& entries,
                                std::string_view name) {
  std::optional<Entry> found;
  for (const Entry& entry : entries) {
    if (entry.name != name) continue;
    if (found) {
      const Location first = reader.key_at(*found);
      reader.error(reader.key_at(entry), entry.path,
                   "defined twice (first at " + first.file + ":" + std::to_string(first.line) +
                       ":" + std::to_string(first.column) + ")");
      return std::nullopt;
    }
    found = entry;
  }
  return found;
}

void read_supervisor_include(Reader& reader, const Entry& entry, SupervisorDraft& draft) {
  draft.spec.include.clear();
  draft.includes = read_include(reader, entry, &draft.spec.include);
}

constexpr Key<SupervisorDraft> kSupervisorKeys[] = {
    {"socket", read_socket},
    {"socket_mode", assign<&Reader::mode, &SupervisorSpec::socket_mode>},
    {"socket_group", read_into<read_socket_group, &SupervisorSpec::socket_group>},
    {"pidfile", read_supervisor_path<&SupervisorSpec::pidfile, &SupervisorSites::pidfile>},
    {"log", read_supervisor_path<&SupervisorSpec::log, &SupervisorSites::log>},
    {"log_dir", read_supervisor_path<&SupervisorSpec::log_dir, &SupervisorSites::log_dir>},
    {"umask", assign<&Reader::mode, &SupervisorSpec::umask>},
    {"shutdown_timeout", assign<&Reader::duration, &SupervisorSpec::shutdown_timeout>},
    {"include", read_supervisor_include},
};

// The handlers of the job keys whose presence counts too (a job without a command is an
// error; the streams not given get their default files later), and of the bounded counts.
void read_job_command(Reader& reader, const Entry& item, JobDraft& draft) {
  draft.command_given = true;
  read_command(reader, item, draft.spec);
}

void read_stdout(Reader& reader, const Entry& item, JobDraft& draft) {
  draft.stdout_given = true;
  draft.stdout_at = reader.value_at(item);
  read_output(reader, item, false, draft.spec.stdout_log);
}

void read_stderr(Reader& reader, const Entry& item, JobDraft& draft) {
  draft.stderr_given = true;
  draft.stderr_at = reader.value_at(item);
  read_output(reader, item, true, draft.spec.stderr_log);
}

void read_log_backups(Reader& reader, const Entry& item, JobDraft& draft) {
  if (auto n = reader.integer(item, 0, 1000, "a whole number from 0 to 1000")) {
    draft.spec.log_backups = static_cast<int>(*n);
  }
}

void read_start_retries(Reader& reader, const Entry& item, JobDraft& draft) {
  if (auto n = reader.integer(item, 0, INT_MAX, "a whole number of 0 or more")) {
    draft.spec.start_retries = static_cast<int>(*n);
  }
}

constexpr Key<JobDraft> kJobKeys[] = {
    {"command", read_job_command},
    {"cwd", assign<&Reader::path, &JobSpec::cwd>},
    {"umask", assign<&Reader::mode, &JobSpec::umask>},
    {"env", read_into<read_env, &JobSpec::env>},
    {"user", read_into<read_user, &JobSpec::user>},
    {"group", read_into<read_group, &JobSpec::group>},
    {"stdout", read_stdout},
    {"stderr", read_stderr},
    {"log_max_size", assign<&Reader::size, &JobSpec::log_max_size>},
    {"log_backups", read_log_backups},
    {"log_timestamps", assign<&Reader::boolean, &JobSpec::log_timestamps>},
    {"autostart", assign<&Reader::boolean, &JobSpec::autostart>},
    {"restart", read_into<read_restart, &JobSpec::restart>},
    {"success_exit_codes", read_into<read_exit_codes, &JobSpec::success_exit_codes>},
    {"start_seconds", assign<&Reader::duration, &JobSpec::start_seconds>},
    {"start_retries", read_start_retries},
    {"backoff", read_into<read_backoff, &JobSpec::backoff>},
    {"stop_signal", assign<&Reader::signal, &JobSpec::stop_signal>},
    {"stop_timeout", assign<&Reader::duration, &JobSpec::stop_timeout>},
    {"kill_group", assign<&Reader::boolean, &JobSpec::kill_group>},
};

}  // namespace

void read_supervisor(Reader& reader, const Entry& section, SupervisorSpec& spec,
                     SupervisorSites& sites, std::vector<IncludeRef>& includes) {
  SupervisorDraft draft{spec, sites, includes};
  read_keys(reader, reader.entries(section), section.path, kSupervisorKeys, draft);
}

std::optional<std::string> read_socket_only(Reader& reader) {
  // Repeats are looked for only among the keys on the way to the socket.
  const std::optional<Entry> supervisor =
      only_entry(reader,
                 reader.entries(reader.source().root(), "",
                                "a mapping with supervisor: and jobs: at the top level", true),
                 "supervisor");
  if (!supervisor) return std::nullopt;
  const std::optional<Entry> socket =
      only_entry(reader, reader.entries(*supervisor, "a mapping", true), "socket");
  if (!socket) return std::nullopt;
  return socket_path(reader, *socket);
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
  read_keys(reader, reader.entries(entry), entry.path, kJobKeys, draft);
  if (!draft.command_given) {
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

void section_keys(KnownKeys& out) {
  out.supervisor = names_of(kSupervisorKeys);
  out.job = names_of(kJobKeys);
  out.backoff = names_of(kBackoffKeys);
  out.restart_policies = names_of(kRestartPolicies);
}

}  // namespace vigil::config::internal
