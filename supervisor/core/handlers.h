// The JSON faces of core objects, as the control protocol shows them (docs/protocol.md):
// status objects, outcomes, state events, reload reports. Pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "effects.h"
#include "job.h"
#include "message.h"
#include "supervisor.h"

namespace vigil::core {

using protocol::json;

// {"code": N} | {"signal": "KILL"} | null
json exit_json(const std::optional<ExitStatus>& e);
// The members of a status object, as a set: a status request may ask for some only
// (args.fields), and a client that shows 7 of them then reads a third of the bytes.
using StatusMembers = unsigned;
inline constexpr StatusMembers kAllStatusMembers = (1u << 13) - 1;
// The member called `name` ("pid"), or nullopt for a name that is none.
std::optional<StatusMembers> status_member(std::string_view name);
// Every member's name, in order, for messages: "command, last_exit, ..., wanted".
std::string status_member_names();

// One job's status object as JSON text, appended to `out`: the bytes `status` sends for
// it, members in the order a json object keeps them, only those in `members`. Written
// directly rather than built as a json tree and dumped, which for 1000 jobs cost more
// than all the rest of the request. `log_error` is the health of the job's log files
// ("" when fine).
void append_status_json(std::string& out, const Job& job, const Instant& now,
                        std::string_view log_error, StatusMembers members = kAllStatusMembers);
// The same object as a json tree.
json status_json(const Job& job, const Instant& now, std::string_view log_error = {});
json outcome_json(const Outcome& o);
// The fields of a "state" event.
json state_event_json(const StateChanged& c);
json reload_json(const ReloadReport& r);
// When any outcome failed: the `failed` error whose message names the first failure and
// where to look ("web: exited with status 1 after 0.2s (see /var/log/vigil/web.err.log)").
std::optional<protocol::Error> outcomes_error(const std::vector<Outcome>& outcomes);

}  // namespace vigil::core
