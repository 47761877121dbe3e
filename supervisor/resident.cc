// Giving back start-up memory.
#include "resident.h"

#include <malloc.h>
#include <sys/mman.h>

#include <cstdio>
#include <cstring>

namespace vigil {

void release_free_heap() {
  ::malloc_trim(0);
}

void release_startup_memory() {
  release_free_heap();
  std::FILE* maps = std::fopen("/proc/self/maps", "re");
  if (maps == nullptr) return;  // no /proc: keep the mappings, nothing is wrong
  char line[512];
  while (std::fgets(line, sizeof line, maps) != nullptr) {
    unsigned long begin = 0, end = 0;
    char perms[5] = {};
    int path_at = 0;
    if (std::sscanf(line, "%lx-%lx %4s %*s %*s %*s %n", &begin, &end, perms, &path_at) < 3) continue;
    // Code mapped from a file (the program and its libraries), not [vdso] and the like:
    // private and never written, so dropping it loses nothing.
    if (std::strcmp(perms, "r-xp") != 0 || line[path_at] != '/') continue;
    ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  }
  std::fclose(maps);
}

}  // namespace vigil
