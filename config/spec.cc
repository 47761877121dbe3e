// The few behaviours of the plain config structs: rendering a diagnostic and comparing
// two job definitions for reload.
#include "spec.h"

namespace vigil::config {

std::string Location::str() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string Diagnostic::str() const {
  std::string out = where.str();
  if (!out.empty()) out += ": ";
  return out + message;
}

bool JobSpec::same_definition(const JobSpec& other) const {
  // Spelled out field by field (rather than a defaulted operator== with defined_at
  // patched over) so that adding a field to JobSpec without deciding here whether it
  // matters to reload is visible in review.
  return name == other.name && argv == other.argv && shell == other.shell && cwd == other.cwd &&
         umask == other.umask && env == other.env && user == other.user && group == other.group &&
         stdout_log == other.stdout_log && stderr_log == other.stderr_log &&
         log_max_size == other.log_max_size && log_backups == other.log_backups &&
         log_timestamps == other.log_timestamps && autostart == other.autostart &&
         restart == other.restart && success_exit_codes == other.success_exit_codes &&
         start_seconds == other.start_seconds && start_retries == other.start_retries &&
         backoff == other.backoff && stop_signal == other.stop_signal &&
         stop_timeout == other.stop_timeout && kill_group == other.kill_group;
}

}  // namespace vigil::config
