// vigild's entry point: arguments, config, daemonizing, and handing over to the loop.
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "daemon.h"
#include "daemonize.h"
#include "fd_budget.h"
#include "loader.h"
#include "logger.h"
#include "runtime_dir.h"
#include "vigil_version.h"

namespace {

constexpr const char* kUsage =
    "usage: vigild [-c FILE] [-f|--foreground] [--check] [--version] [-h|--help]\n"
    "\n"
    "  -c, --config FILE   the config file (default: /etc/vigil/vigil.yaml as root,\n"
    "                      else $XDG_CONFIG_HOME/vigil/vigil.yaml)\n"
    "  -f, --foreground    stay attached, log to stderr, notify $NOTIFY_SOCKET when ready\n"
    "      --check         validate the config, print every problem, exit 0 or 2\n"
    "      --version       print the version\n"
    "  -h, --help          this help\n"
    "\n"
    "Signals: TERM/INT stop all jobs and exit; HUP reloads the config; USR1 reopens logs.\n"
    "Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.\n";

struct Options {
  std::string config;
  bool foreground = false;
  bool check = false;
};

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "vigild: %s\n%s", msg.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Descriptors 0, 1 and 2 are always open (on /dev/null if vigild was started without
  // them): otherwise the first file vigild opens would take one of their numbers, and a
  // job's stdio, or a diagnostic, would go to the wrong place.
  for (int fd = ::open("/dev/null", O_RDWR); fd >= 0; fd = ::open("/dev/null", O_RDWR)) {
    if (fd > 2) {
      ::close(fd);
      break;
    }
  }
  // One malloc arena for both threads (the loop and the log writer): a second arena
  // costs more resident memory than the rare contention between the two.
  ::mallopt(M_ARENA_MAX, 1);
  // Big buffers (a status answer for 1000 jobs, a log tail, a 256 KiB log chunk) come
  // from mmap and go back to the system when freed, instead of growing a heap that the
  // small allocations made meanwhile keep from shrinking. Setting it also stops glibc
  // from raising the threshold after each such free.
  ::mallopt(M_MMAP_THRESHOLD, 64 * 1024);
  Options opt;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--version") {
      std::printf("vigild %s\n", VIGIL_VERSION);
      return 0;
    } else if (a == "-f" || a == "--foreground") {
      opt.foreground = true;
    } else if (a == "--check") {
      opt.check = true;
    } else if (a == "-c" || a == "--config") {
      if (i + 1 >= args.size()) return usage_error(a + " needs a file");
      opt.config = args[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      opt.config = a.substr(9);
    } else {
      return usage_error("unknown argument '" + a + "'");
    }
  }

  auto env = vigil::config::Environment::current();
  if (opt.config.empty()) opt.config = vigil::config::default_config_path(env);

  // The config is read before anything else happens, so a bad one is reported on the
  // user's terminal and never half-applied.
  auto loaded = vigil::config::load(opt.config, env);
  if (!loaded.ok()) {
    for (const auto& d : loaded.errors) std::fprintf(stderr, "%s\n", d.str().c_str());
    std::fprintf(stderr, "vigild: %zu error%s in the config; nothing started\n",
                 loaded.errors.size(), loaded.errors.size() == 1 ? "" : "s");
    return 2;
  }
  // Whether the jobs fit in the descriptors vigild will have: a warning, not an error,
  // since the limit is the environment's (a service's LimitNOFILE may differ from this
  // shell's) and jobs that do not autostart may never run at once.
  const std::string shortfall =
      vigil::fd_budget(loaded.config->jobs).shortfall(vigil::daemon_fd_limit());
  if (opt.check) {
    if (!shortfall.empty()) std::fprintf(stderr, "vigild: warning: %s\n", shortfall.c_str());
    std::printf("%s: ok (%zu job%s, %zu file%s)\n", opt.config.c_str(),
                loaded.config->jobs.size(), loaded.config->jobs.size() == 1 ? "" : "s",
                loaded.config->files.size(), loaded.config->files.size() == 1 ? "" : "s");
    return 0;
  }
  const auto& sup = loaded.config->supervisor;
  // Before anything is created in it: a runtime folder that another user made first (in
  // /tmp anyone can) would let them move the socket aside and answer in vigild's place.
  if (auto err = vigil::config::prepare_runtime_dir(sup, env); !err.empty()) {
    std::fprintf(stderr, "vigild: cannot use the runtime directory: %s\n", err.c_str());
    return 1;
  }

  // The daemon logs it too; the user who starts one sees it here, before it detaches.
  if (!opt.foreground && !shortfall.empty()) {
    std::fprintf(stderr, "vigild: warning: %s\n", shortfall.c_str());
  }
  vigil::Logger log;
  vigil::Readiness readiness = opt.foreground ? vigil::Readiness::foreground()
                                              : vigil::Readiness::daemonize(sup.umask);
  ::umask(sup.umask);
  if (!opt.foreground) {
    if (auto err = log.use_file(sup.log); !err.empty()) {
      readiness.fail("supervisor.log: " + err, 1);
      return 1;
    }
  }

  int code = 1;
  {
    vigil::Daemon daemon(std::move(*loaded.config), env, log);
    if (auto err = daemon.prepare(); !err.empty()) {
      log.error(err);
      if (!opt.foreground) readiness.fail(err, 1);
      return 1;
    }
    readiness.ready();
    code = daemon.run();
  }
  // The last line of a vigild that ended as it should: every handle closed, every thread
  // joined. Tests look for it (a crash on the way out would otherwise go unseen).
  log.info("vigild exited (" + std::to_string(code) + ")");
  return code;
}
