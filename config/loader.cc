// Loading a whole configuration: the main file, its includes (globs, loops, files met
// twice), the checks that need every file (a job defined twice), and the defaults that
// depend on the result (job log paths under log_dir). Problems are collected, sorted by
// file and position, and a Config is returned only when there are none.
#include "loader.h"

#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <span>
#include <utility>

#include "internal.h"
#include "reader.h"
#include "sections.h"
#include "shared_files.h"
#include "source.h"
#include "values.h"

namespace vigil::config {
namespace {

using internal::Entry;
using internal::IncludeRef;
using internal::JobDraft;
using internal::Reader;
using internal::Source;

bool has_glob_characters(std::string_view pattern) {
  return pattern.find_first_of("*?[") != std::string_view::npos;
}

// The config's own folder is literal text, even if its name contains * ? or [.
std::string glob_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// glob(3) reports unreadable folders through a callback without a context pointer; the
// loader runs on one thread at a time per call, so a thread_local carries the first one.
thread_local std::optional<std::pair<std::string, int>> glob_failure;

int on_glob_error(const char* path, int error) {
  if (!glob_failure && error != ENOENT && error != ENOTDIR) glob_failure.emplace(path, error);
  return 0;  // keep going: report the problem, but still load what can be read
}

// A file's identity for loop detection: the same file reached through different paths
// (symlinks, "..") is still the same file.
using FileId = std::pair<dev_t, ino_t>;

class Loader {
  // The readers of the top-level keys. Each adds the include patterns it finds to
  // `includes`, to be followed once the whole file is read.
  void read_supervisor_key(Reader& reader, const Entry& entry, std::vector<IncludeRef>& includes) {
    read_supervisor(reader, entry, supervisor_, supervisor_sites_, includes);
  }
  void read_include_key(Reader& reader, const Entry& entry, std::vector<IncludeRef>& includes) {
    includes = read_include(reader, entry, nullptr);
  }
  void read_jobs_key(Reader& reader, const Entry& entry, std::vector<IncludeRef>&) {
    read_jobs(reader, entry);
  }

 public:
  // One top-level key of a file and its reader. A file's top level accepts the keys of
  // its table and no other; known_keys() lists them.
  struct TopKey {
    std::string_view name;
    void (Loader::*read)(Reader& reader, const Entry& entry, std::vector<IncludeRef>& includes);
  };
  static constexpr TopKey kMainKeys[] = {
      {"supervisor", &Loader::read_supervisor_key},
      {"jobs", &Loader::read_jobs_key},
  };
  static constexpr TopKey kIncludedKeys[] = {
      {"jobs", &Loader::read_jobs_key},
      {"include", &Loader::read_include_key},
  };

  explicit Loader(const Environment& env) : env_(env), supervisor_(default_supervisor(env)) {}

  // Loads the main file from `text`. `display` is the name used in messages, `absolute`
  // its absolute path, `id` its identity when it exists on disk.
  void load_main(const std::string& display, const std::string& absolute, std::string text,
                 std::optional<FileId> id) {
    path_ = absolute;
    main_display_ = display;
    read_text(display, absolute, std::move(text), id, true);
  }

  void fail(Diagnostic diagnostic) { errors_.push_back(std::move(diagnostic)); }

  LoadResult finish() {
    fill_log_defaults();
    // Two writers of one file (two jobs' logs, a log and the pidfile) would destroy it.
    if (!file_rank_.empty()) {
      internal::check_shared_files(supervisor_, supervisor_sites_, jobs_, main_display_, errors_);
    }
    LoadResult result;
    // Messages are sorted by file (in the order the files were read) and position, so
    // that a problem found late (a missing command, reported at the job's name) still
    // appears where a reader of the file expects it.
    std::stable_sort(errors_.begin(), errors_.end(), [&](const Diagnostic& a, const Diagnostic& b) {
      const auto rank = [&](const Location& at) {
        auto it = file_rank_.find(at.file);
        return it == file_rank_.end() ? file_rank_.size() : it->second;
      };
      return std::tuple(rank(a.where), a.where.line, a.where.column) <
             std::tuple(rank(b.where), b.where.line, b.where.column);
    });
    result.errors = std::move(errors_);
    if (!result.errors.empty()) return result;
    Config config;
    config.path = path_;
    config.supervisor = std::move(supervisor_);
    config.files = std::move(files_);
    config.jobs.reserve(jobs_.size());
    for (JobDraft& draft : jobs_) config.jobs.push_back(std::move(draft.spec));
    result.config = std::move(config);
    return result;
  }

 private:
  struct Frame {
    std::optional<FileId> id;
    std::string display;
  };

  void read_text(const std::string& display, const std::string& absolute, std::string text,
                 std::optional<FileId> id, bool is_main) {
    file_rank_.emplace(display, file_rank_.size());
    files_.push_back(absolute);
    if (id) done_.insert(*id);
    stack_.push_back({id, display});

    Source source(display, std::move(text));
    Reader reader(source, internal::parent_of(absolute), env_, errors_);
    if (source.parse(errors_)) read_top_level(reader, is_main);

    stack_.pop_back();
  }

  void read_top_level(Reader& reader, bool is_main) {
    const YAML::Node& root = reader.source().root();
    std::vector<IncludeRef> includes;
    const char* what = is_main ? "a mapping with supervisor: and jobs: at the top level"
                               : "a mapping with jobs: (and include:) at the top level";
    const std::span<const TopKey> keys = is_main ? kMainKeys : kIncludedKeys;
    for (const Entry& entry : reader.entries(root, "", what)) {
      // As in docker compose, top-level keys that start with x- are the user's: a place
      // to keep anchors (x-defaults: &defaults {...}) for jobs to merge with <<.
      if (entry.name.starts_with("x-")) continue;
      const auto key = std::find_if(keys.begin(), keys.end(),
                                    [&](const TopKey& k) { return k.name == entry.name; });
      if (key != keys.end()) {
        (this->*key->read)(reader, entry, includes);
      } else if (is_main && entry.name == "include") {
        reader.error(reader.key_at(entry), "include",
                     "not allowed at the top level of the main file (expected it under "
                     "supervisor:)");
      } else if (!is_main && entry.name == "supervisor") {
        reader.error(reader.key_at(entry), "supervisor",
                     "not allowed in an included file (expected only jobs: and include:)");
      } else {
        std::string message = "unknown top-level key " + quote(entry.name);
        if (auto suggestion = did_you_mean(entry.name, internal::names_of(keys))) {
          message += " (did you mean \"" + *suggestion + "\"?)";
        }
        reader.error(reader.key_at(entry), "", message);
      }
    }
    // A file's own jobs come before those of the files it includes.
    for (const IncludeRef& ref : includes) include(reader, ref);
  }

  void read_jobs(Reader& reader, const Entry& section) {
    // Repeated names are checked across all files below, so that a job defined twice
    // in one file gets the same message as one defined in two.
    for (const Entry& entry :
         reader.entries(section, "a mapping of job names to their settings", true)) {
      JobDraft draft = read_job(reader, entry);
      auto [first, inserted] = job_index_.emplace(entry.name, draft.spec.defined_at);
      if (!inserted) {
        reader.error(draft.spec.defined_at, entry.path,
                     "defined twice (first at " + first->second.str() + ")");
        continue;
      }
      jobs_.push_back(std::move(draft));
    }
  }

  // Expands one include pattern and reads every file it names.
  void include(Reader& reader, const IncludeRef& ref) {
    const std::string& base = reader.base_dir();
    const bool absolute = ref.pattern.front() == '/';
    // The pattern is joined but not normalized before glob(3) sees it, so that every
    // match starts with `prefix` and the rest can be shown relative to the including
    // file, the way the user wrote it.
    const std::string prefix = absolute ? "" : (base.ends_with('/') ? base : base + "/");
    std::vector<std::string> matches;
    if (!has_glob_characters(ref.pattern)) {
      // A plain file name must exist: reading it reports it when it does not.
      matches.push_back(prefix + ref.pattern);
    } else {
      const std::string full = glob_escape(prefix) + ref.pattern;
      glob_t found{};
      glob_failure.reset();
      const int rc = glob(full.c_str(), 0, on_glob_error, &found);
      if (rc == 0) {
        for (std::size_t i = 0; i < found.gl_pathc; ++i) matches.emplace_back(found.gl_pathv[i]);
      } else if (rc == GLOB_NOSPACE) {
        reader.error(ref.at, ref.path, "cannot expand " + quote(ref.pattern) + ": out of memory");
      }
      globfree(&found);
      if (glob_failure) {
        reader.error(ref.at, ref.path,
                     "cannot read " + internal::escape_controls(glob_failure->first) + ": " +
                         std::strerror(glob_failure->second));
      }
      // Byte order, not the locale's collation: the same files load in the same order
      // everywhere.
      std::sort(matches.begin(), matches.end());
    }

    const std::string display_dir = internal::parent_of(stack_.back().display);
    for (const std::string& match : matches) {
      // Escaped here, once, so that a file named "a<newline>b.yaml" cannot break its
      // own diagnostics, or those about it, into two lines.
      const std::string display = internal::escape_controls(
          absolute
              ? internal::resolve_path("/", match)
              : internal::resolve_path(display_dir, std::string_view(match).substr(prefix.size())));
      include_file(reader, ref, display, internal::resolve_path("/", match));
    }
  }

  void include_file(Reader& reader, const IncludeRef& ref, const std::string& display,
                    const std::string& absolute) {
    internal::FileData data = internal::read_file(absolute);
    if (data.error || data.not_regular) {
      reader.error(ref.at, ref.path,
                   "cannot read " + display + ": " + internal::read_failure(data));
      return;
    }
    if (data.too_large) {
      fail({{display, 0, 0}, internal::too_large_message(*data.too_large)});
      return;
    }
    const FileId id{data.device, data.inode};
    for (std::size_t i = 0; i < stack_.size(); ++i) {
      if (stack_[i].id != id) continue;
      std::string chain;
      for (std::size_t j = i; j < stack_.size(); ++j) chain += stack_[j].display + " -> ";
      reader.error(ref.at, ref.path, "includes form a loop: " + chain + display);
      return;
    }
    // A file reached again by another pattern or another file (conf.d/*.yaml and
    // conf.d/web.yaml) is read once, like a header with an include guard.
    if (done_.contains(id)) return;
    read_text(display, absolute, std::move(data.text), id, false);
  }

  // Job log paths default to the final log_dir, which may be set after the jobs are read
  // (or in a different order in the file), so they are filled in at the end.
  void fill_log_defaults() {
    for (JobDraft& draft : jobs_) {
      JobSpec& job = draft.spec;
      if (!draft.stdout_given) {
        job.stdout_log = {Output::Kind::file,
                          internal::resolve_path(supervisor_.log_dir, job.name + ".out.log")};
      }
      if (!draft.stderr_given) {
        job.stderr_log = {Output::Kind::file,
                          internal::resolve_path(supervisor_.log_dir, job.name + ".err.log")};
      }
    }
  }

  const Environment& env_;
  SupervisorSpec supervisor_;
  internal::SupervisorSites supervisor_sites_;
  std::string path_;
  std::string main_display_;
  std::vector<JobDraft> jobs_;
  std::map<std::string, Location> job_index_;
  std::vector<std::string> files_;
  std::map<std::string, std::size_t> file_rank_;
  std::set<FileId> done_;
  std::vector<Frame> stack_;
  std::vector<Diagnostic> errors_;
};

std::optional<std::string> absolute_path(const std::string& path) {
  if (!path.empty() && path.front() == '/') return internal::resolve_path("/", path);
  std::string cwd(4096, '\0');
  while (getcwd(cwd.data(), cwd.size()) == nullptr) {
    if (errno != ERANGE) return std::nullopt;
    cwd.resize(cwd.size() * 2);
  }
  cwd.resize(std::strlen(cwd.c_str()));
  return internal::resolve_path(cwd, path);
}

// Runs `body` with yaml-cpp's and the standard library's exceptions turned into a
// diagnostic: whatever slips past the specific handlers must not take vigild down.
template <typename Body>
LoadResult guarded(const std::string& display, Body body) {
  try {
    return body();
  } catch (const std::exception& e) {
    LoadResult result;
    result.errors.push_back(
        {{display, 0, 0}, std::string("internal error while loading: ") + e.what()});
    return result;
  } catch (...) {
    LoadResult result;
    result.errors.push_back({{display, 0, 0}, "internal error while loading"});
    return result;
  }
}

}  // namespace

LoadResult load(const std::string& path, const Environment& env) {
  return guarded(path, [&] {
    Loader loader(env);
    if (path.empty()) {
      loader.fail({{"", 0, 0}, "no config file given (expected a path)"});
      return loader.finish();
    }
    const std::optional<std::string> absolute = absolute_path(path);
    if (!absolute) {
      loader.fail({{path, 0, 0}, std::string("cannot read: ") + std::strerror(errno)});
      return loader.finish();
    }
    internal::FileData data = internal::read_file(*absolute);
    if (data.error || data.not_regular) {
      loader.fail({{path, 0, 0}, "cannot read: " + internal::read_failure(data)});
    } else if (data.too_large) {
      loader.fail({{path, 0, 0}, internal::too_large_message(*data.too_large)});
    } else {
      loader.load_main(path, *absolute, std::move(data.text), FileId{data.device, data.inode});
    }
    return loader.finish();
  });
}

LoadResult load_from_string(const std::string& text, const std::string& path,
                            const Environment& env) {
  return guarded(path, [&] {
    Loader loader(env);
    const std::optional<std::string> absolute = absolute_path(path);
    if (!absolute) {
      loader.fail({{path, 0, 0}, std::string("cannot resolve the path: ") + std::strerror(errno)});
      return loader.finish();
    }
    if (text.size() > internal::kMaxFileBytes) {
      loader.fail({{path, 0, 0}, internal::too_large_message(text.size())});
      return loader.finish();
    }
    // When the file also exists on disk, an include of it is a loop like any other.
    std::optional<FileId> id;
    struct stat st {};
    if (stat(absolute->c_str(), &st) == 0) id = FileId{st.st_dev, st.st_ino};
    loader.load_main(path, *absolute, text, id);
    return loader.finish();
  });
}

SocketSetting read_socket_setting(const std::string& path, const Environment& env) {
  SocketSetting out;
  try {
    if (path.empty()) {
      out.errors.push_back({{"", 0, 0}, "no config file given (expected a path)"});
      return out;
    }
    const std::optional<std::string> absolute = absolute_path(path);
    if (!absolute) {
      out.errors.push_back({{path, 0, 0}, std::string("cannot read: ") + std::strerror(errno)});
      return out;
    }
    internal::FileData data = internal::read_file(*absolute);
    if (data.error || data.not_regular) {
      out.errors.push_back({{path, 0, 0}, "cannot read: " + internal::read_failure(data)});
      return out;
    }
    if (data.too_large) {
      out.errors.push_back({{path, 0, 0}, internal::too_large_message(*data.too_large)});
      return out;
    }
    Source source(path, std::move(data.text));
    if (!source.parse(out.errors)) return out;
    Reader reader(source, internal::parent_of(*absolute), env, out.errors);
    std::optional<std::string> socket = internal::read_socket_only(reader);
    if (out.errors.empty()) out.socket = std::move(socket);
  } catch (const std::exception& e) {
    out.errors.push_back({{path, 0, 0}, std::string("internal error while reading: ") + e.what()});
  } catch (...) {
    out.errors.push_back({{path, 0, 0}, "internal error while reading"});
  }
  return out;
}

KnownKeys known_keys() {
  KnownKeys keys;
  keys.main = internal::names_of(Loader::kMainKeys);
  keys.included = internal::names_of(Loader::kIncludedKeys);
  internal::section_keys(keys);
  return keys;
}

}  // namespace vigil::config
