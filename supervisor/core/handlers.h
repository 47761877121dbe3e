// The JSON faces of core objects, as the control protocol shows them (docs/protocol.md):
// status objects, outcomes, state events, reload reports. Pure functions.
#pragma once

#include <optional>
#include <vector>

#include "effects.h"
#include "job.h"
#include "message.h"
#include "supervisor.h"

namespace vigil::core {

using protocol::json;

// {"code": N} | {"signal": "KILL"} | null
json exit_json(const std::optional<ExitStatus>& e);
// One job's status object.
json status_json(const Job& job, const Instant& now);
json outcome_json(const Outcome& o);
// The fields of a "state" event.
json state_event_json(const StateChanged& c);
json reload_json(const ReloadReport& r);
// When any outcome failed: the `failed` error whose message names the first failure and
// where to look ("web: exited with status 1 after 0.2s (see /var/log/vigil/web.err.log)").
std::optional<protocol::Error> outcomes_error(const std::vector<Outcome>& outcomes);

}  // namespace vigil::core
