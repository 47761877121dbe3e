// Lexical path helpers for the loader: every path in a loaded config is absolute and
// normalized without touching the filesystem (a log folder need not exist yet).
#include <filesystem>

#include "internal.h"

namespace vigil::config::internal {

std::string resolve_path(std::string_view base, std::string_view path) {
  std::filesystem::path p(path);
  if (p.is_relative()) p = std::filesystem::path(base) / p;
  std::string out = p.lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

std::string parent_of(std::string_view path) {
  return std::filesystem::path(path).parent_path().string();
}

}  // namespace vigil::config::internal
