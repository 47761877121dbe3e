// Every job's pending deadline, in one ordered queue: the daemon arms a single libuv
// timer for the earliest, whatever the number of jobs (one timer handle per job cost
// about 300 bytes each, and a wakeup each).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace vigil::core {

class Deadlines {
 public:
  using Time = std::chrono::milliseconds;

  // Sets (or moves) the job's deadline.
  void set(const std::string& job, Time deadline) {
    clear(job);
    auto [it, _] = by_job_.emplace(job, deadline);
    by_time_.emplace(deadline, &it->first);
  }

  void clear(const std::string& job) {
    auto it = by_job_.find(job);
    if (it == by_job_.end()) return;
    by_time_.erase({it->second, &it->first});
    by_job_.erase(it);
  }

  // The earliest deadline, if any.
  std::optional<Time> next() const {
    if (by_time_.empty()) return std::nullopt;
    return by_time_.begin()->first;
  }

  // Removes and returns the jobs whose deadline is at or before `now`, earliest first.
  std::vector<std::string> take_due(Time now) {
    std::vector<std::string> due;
    while (!by_time_.empty() && by_time_.begin()->first <= now) {
      std::string job = *by_time_.begin()->second;
      clear(job);
      due.push_back(std::move(job));
    }
    return due;
  }

  std::size_t size() const { return by_job_.size(); }

 private:
  // Ordered by time, then by name (the pointer is to the key in by_job_, which never moves).
  struct Earlier {
    bool operator()(const std::pair<Time, const std::string*>& a,
                    const std::pair<Time, const std::string*>& b) const {
      return a.first != b.first ? a.first < b.first : *a.second < *b.second;
    }
  };
  std::map<std::string, Time> by_job_;
  std::set<std::pair<Time, const std::string*>, Earlier> by_time_;
};

}  // namespace vigil::core
