// The check that no two settings name one file: the pidfile, the socket, the daemon's
// log and every job's stdout and stderr (with the backups that rotation makes of them)
// each need a file of their own. Internal to config/.
#pragma once

#include <string>
#include <vector>

#include "sections.h"
#include "spec.h"

namespace vigil::config::internal {

// Reports, at the setting that names it, each file that another setting names too.
// Paths are compared as loaded (absolute and lexically normalized) and, where they exist,
// by what the filesystem says (a symlinked folder, a hard link): the same file reached
// two ways is the same file. (A symlink as the file itself is not followed: vigild
// refuses to write through one.) Files under /dev/ are exempt (two jobs may share
// /dev/console). A clash of defaults alone (a hard link planted between two) is reported
// at the job's name, or at `main_file` for the supervisor's own files. Runs in time
// linear in the number of jobs.
void check_shared_files(const SupervisorSpec& supervisor, const SupervisorSites& sites,
                        const std::vector<JobDraft>& jobs, const std::string& main_file,
                        std::vector<Diagnostic>& errors);

}  // namespace vigil::config::internal
