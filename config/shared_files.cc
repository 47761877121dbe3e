// Two settings naming one file. Each file vigild writes has one writer that owns it:
// a job's log rotated by another job, or a log rotated over the pidfile (which takes
// the pidfile's lock with it, so that a second vigild starts and replaces the log with
// its own pidfile), destroys data without a word. So every such file is checked against
// all the others, in one pass over a hash map.
#include "shared_files.h"

#include <sys/stat.h>

#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "internal.h"
#include "values.h"

namespace vigil::config::internal {
namespace {

// One file a setting names, and what the setting does with it.
struct Claim {
  std::string path;     // absolute and normalized
  std::string setting;  // "supervisor.pidfile", "jobs.web.stdout"
  // Where the setting is written; unset for a default.
  std::optional<Location> at;
  // Where to report a default that conflicts with another default: the job's name.
  Location fallback;
  // Backups that rotation makes of the file (path.1 .. path.N); 0: none.
  int backups = 0;
  // Set for the pidfile's temporary file, which no setting names itself.
  bool pidfile_temp = false;
  // The job, for the two streams of one job (which get their own advice).
  const JobDraft* job = nullptr;
};

// The identity of a file: the file itself where it exists, else the folder it would be
// created in and its name there, else (nothing exists yet) its path. Two paths that reach
// one file have the same identity; lexically equal paths always do. Folders are followed
// through symlinks, as vigild follows them; a symlink in the last place is a file of its
// own (lstat), since vigild never writes through one but refuses it.
class Identities {
 public:
  std::string of(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) return id("I", st) + "/";
    const std::size_t slash = path.rfind('/');
    if (slash != std::string::npos) {
      const std::string parent = slash == 0 ? "/" : path.substr(0, slash);
      auto [it, inserted] = folders_.try_emplace(parent);
      if (inserted) {
        if (::stat(parent.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) it->second = id("D", st);
      }
      if (!it->second.empty()) return it->second + "/" + path.substr(slash + 1);
    }
    return "L" + path;
  }

 private:
  static std::string id(const char* kind, const struct stat& st) {
    return std::string(kind) + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  }
  // Most logs share a folder or two: each is looked at once. "" when it does not exist.
  std::unordered_map<std::string, std::string> folders_;
};

// "/var/log/web.log.3" -> {"/var/log/web.log", 3}, for names that rotation could make.
std::optional<std::pair<std::string, int>> backup_of(const std::string& path) {
  const std::size_t dot = path.rfind('.');
  if (dot == std::string::npos || dot + 1 >= path.size() || path[dot + 1] == '0') {
    return std::nullopt;
  }
  int n = 0;
  const char* first = path.data() + dot + 1;
  const char* last = path.data() + path.size();
  const auto [end, ec] = std::from_chars(first, last, n);
  if (ec != std::errc() || end != last || last - first > 4) return std::nullopt;
  return std::pair(path.substr(0, dot), n);
}

// "jobs.a.stdout at vigil.yaml:3:13", or "the default of supervisor.pidfile"; `name` is
// how the setting is called ("the job's stderr" for the other stream of one job).
std::string named(const Claim& c, const std::string& name) {
  return c.at ? name + " at " + c.at->str() : "the default of " + name;
}

bool same_job(const Claim& a, const Claim& b) {
  return a.job != nullptr && a.job == b.job;
}

// How `file` (what `subject` names) relates to `other`, for the message.
enum class Relation { same_path, same_file, backup };

std::string describe(const Claim& subject, const Claim& other, Relation relation) {
  const bool own_stream = same_job(subject, other);
  const std::string what =
      named(other, own_stream ? "the job's " + other.setting.substr(other.setting.rfind('.') + 1)
                              : other.setting);
  std::string text = quote(subject.path) + " is ";
  if (other.pidfile_temp) {
    text += "where vigild writes " + what + " before it renames it into place";
  } else if (relation == Relation::backup) {
    const std::string n = std::to_string(other.backups);
    text += "a backup of " + what + ", which rotation keeps as " + quote(other.path + ".1") +
            (other.backups == 1 ? "" : " to " + quote(other.path + "." + n));
  } else if (relation == Relation::same_file) {
    text += "the same file as " + what + " (" + quote(other.path) + ")";
  } else {
    text += "also " + what;
  }
  if (own_stream && relation != Relation::backup) {
    text += " (expected another file; to send both streams to one file, write stderr: stdout)";
  } else {
    text += " (expected a file that no other setting uses)";
  }
  return text;
}

class Checker {
 public:
  explicit Checker(std::vector<Diagnostic>& errors) : errors_(errors) {}

  void claim(Claim c) {
    // An empty path failed to load and has been reported; /dev/ holds devices that
    // any number of writers may share.
    if (c.path.empty() || c.path.starts_with("/dev/")) return;
    claims_.push_back(std::move(c));
  }

  void check() {
    // First every file, then the backups, which may belong to a file claimed later.
    std::vector<std::string> ids(claims_.size());
    for (std::size_t i = 0; i < claims_.size(); ++i) {
      ids[i] = identities_.of(claims_[i].path);
      auto [it, inserted] = owners_.emplace(ids[i], i);
      if (!inserted) {
        const Claim& first = claims_[it->second];
        conflict(first, claims_[i],
                 first.path == claims_[i].path ? Relation::same_path : Relation::same_file);
      }
    }
    for (std::size_t i = 0; i < claims_.size(); ++i) {
      if (owners_.at(ids[i]) != i) continue;  // reported already
      const std::optional<std::pair<std::string, int>> backup = backup_of(claims_[i].path);
      if (!backup) continue;
      const auto it = owners_.find(identities_.of(backup->first));
      if (it == owners_.end() || it->second == i) continue;
      const Claim& owner = claims_[it->second];
      if (owner.backups >= backup->second) conflict(owner, claims_[i], Relation::backup);
    }
  }

 private:
  // Reports `second` (claimed after `first`) at the setting that is written in the
  // config: the later one when both are.
  void conflict(const Claim& first, const Claim& second, Relation relation) {
    if (relation == Relation::backup) {
      // Only the backup's side can be the one to change: its name is the problem.
      errors_.push_back({second.at.value_or(second.fallback),
                         second.setting + ": " + describe(second, first, relation)});
      return;
    }
    // The pidfile's temporary file is never the one to blame: no setting names it.
    const bool second_is_subject =
        first.pidfile_temp ||
        (!second.pidfile_temp && (second.at.has_value() || !first.at.has_value()));
    const Claim& subject = second_is_subject ? second : first;
    const Claim& other = second_is_subject ? first : second;
    errors_.push_back({subject.at.value_or(subject.fallback),
                       subject.setting + ": " + describe(subject, other, relation)});
  }

  std::vector<Diagnostic>& errors_;
  std::vector<Claim> claims_;
  Identities identities_;
  std::unordered_map<std::string, std::size_t> owners_;
};

}  // namespace

void check_shared_files(const SupervisorSpec& supervisor, const SupervisorSites& sites,
                        const std::vector<JobDraft>& jobs, const std::string& main_file,
                        std::vector<Diagnostic>& errors) {
  Checker checker(errors);
  // Where two defaults of the supervisor's that clash are reported: the main file.
  const Location nowhere{main_file};
  checker.claim({supervisor.socket, "supervisor.socket", sites.socket, nowhere});
  checker.claim({supervisor.pidfile, "supervisor.pidfile", sites.pidfile, nowhere});
  if (!supervisor.pidfile.empty()) {
    Claim temp{supervisor.pidfile + kPidfileTempSuffix, "supervisor.pidfile", sites.pidfile,
               nowhere};
    temp.pidfile_temp = true;
    checker.claim(std::move(temp));
  }
  checker.claim({supervisor.log, "supervisor.log", sites.log, nowhere, kDaemonLogBackups});
  for (const JobDraft& draft : jobs) {
    const JobSpec& job = draft.spec;
    const std::string prefix = "jobs." + printable(job.name);
    // Rotation makes backups only when it rotates and keeps some.
    const int backups = job.log_max_size > 0 ? job.log_backups : 0;
    const auto stream = [&](const Output& out, bool given, const Location& at, const char* name) {
      if (out.kind != Output::Kind::file) return;
      Claim c{out.path, prefix + "." + name, std::nullopt, job.defined_at, backups};
      if (given) c.at = at;
      c.job = &draft;
      checker.claim(std::move(c));
    };
    stream(job.stdout_log, draft.stdout_given, draft.stdout_at, "stdout");
    stream(job.stderr_log, draft.stderr_given, draft.stderr_at, "stderr");
  }
  checker.check();
}

}  // namespace vigil::config::internal
