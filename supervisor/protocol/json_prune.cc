// A json DOM builder on nlohmann's SAX interface that skips unwanted members.
#include "json_prune.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace vigil::protocol {

namespace {

using json = nlohmann::json;

class PruningBuilder {
 public:
  explicit PruningBuilder(std::span<const std::string_view> keep) : keep_(keep) {}

  json take() { return std::move(root_); }

  bool null() { return value(nullptr); }
  bool boolean(bool b) { return value(b); }
  bool number_integer(json::number_integer_t n) { return value(n); }
  bool number_unsigned(json::number_unsigned_t n) { return value(n); }
  bool number_float(json::number_float_t x, const std::string&) { return value(x); }
  bool string(std::string& s) { return value(std::move(s)); }
  bool binary(json::binary_t& b) { return value(json::binary(std::move(b))); }

  bool start_object(std::size_t) {
    if (skipping()) {
      ++skip_depth_;
      return true;
    }
    const bool prune = !stack_.empty() && stack_.back().result_array;
    stack_.push_back({add(json::object()), false, prune});
    return true;
  }
  bool key(std::string& k) {
    if (skipping()) return true;
    const Open& top = stack_.back();
    if (top.prune && std::find(keep_.begin(), keep_.end(), k) == keep_.end()) {
      skip_next_ = true;
    } else {
      key_ = std::move(k);
    }
    return true;
  }
  bool end_object() { return end(); }

  bool start_array(std::size_t) {
    if (skipping()) {
      ++skip_depth_;
      return true;
    }
    const bool result =
        stack_.size() == 1 && stack_.back().container->is_object() && key_ == "result";
    stack_.push_back({add(json::array()), result, false});
    return true;
  }
  bool end_array() { return end(); }

  // As json::parse: the error is thrown, with its own type.
  template <class Exception>
  bool parse_error(std::size_t, const std::string&, const Exception& ex) {
    throw ex;
  }

 private:
  struct Open {
    json* container;
    bool result_array;  // the top-level "result" array: its objects are pruned
    bool prune;         // an object in it
  };

  // Within a member that is being read past.
  bool skipping() const { return skip_next_ || skip_depth_ > 0; }

  bool value(json v) {
    if (skip_depth_ > 0) return true;
    if (skip_next_) {
      skip_next_ = false;  // that was the whole skipped member
      return true;
    }
    add(std::move(v));
    return true;
  }

  bool end() {
    if (skip_depth_ > 0) {
      if (--skip_depth_ == 0) skip_next_ = false;
      return true;
    }
    stack_.pop_back();
    return true;
  }

  // Puts a value where the parser is, and returns where it went.
  json* add(json v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    json& parent = *stack_.back().container;
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    json& slot = parent[key_];
    slot = std::move(v);
    return &slot;
  }

  std::span<const std::string_view> keep_;
  json root_;
  std::vector<Open> stack_;
  std::string key_;
  bool skip_next_ = false;  // the next value belongs to a dropped member
  int skip_depth_ = 0;      // containers open inside it
};

}  // namespace

json parse_pruned(std::string_view text, std::span<const std::string_view> keep) {
  PruningBuilder builder(keep);
  json::sax_parse(text.begin(), text.end(), &builder);
  return builder.take();
}

}  // namespace vigil::protocol
