#pragma once
// File-system helpers that do not go through std::filesystem's out-of-line functions.
//
// Why: libtorch 2.11 (PyPI wheels) exports its own copies of libstdc++'s std::filesystem
// functions, and a program linked against libtorch binds to them before libstdc++. Its
// remove_all() then calls a libstdc++ symbol that is not there and jumps to address 0 (seen on
// Debian 12 and on the GPU machine). Code that links torch removes directories with
// remove_tree() instead.
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "genprm/util/error.hpp"

namespace genprm {

/// Removes `path` and everything under it, never following symbolic links (a link is removed,
/// not its target). A missing path is not an error. Throws Error naming the entry that could not
/// be removed. Returns the number of entries removed.
inline size_t remove_tree(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    GENPRM_CHECK(errno == ENOENT, "remove_tree: cannot stat {}: {}", path, std::strerror(errno));
    return 0;
  }
  // nftw's callback is a plain function: the count and first failure live in thread-locals.
  static thread_local size_t removed;
  static thread_local std::string failed;
  removed = 0;
  failed.clear();
  auto visit = [](const char* p, const struct stat*, int, struct FTW*) -> int {
    if (::remove(p) != 0) {
      failed = fmt::format("{}: {}", p, std::strerror(errno));
      return 1;
    }
    ++removed;
    return 0;
  };
  const int rc = ::nftw(path.c_str(), visit, 32, FTW_DEPTH | FTW_PHYS);
  GENPRM_CHECK(rc == 0 && failed.empty(), "remove_tree: cannot remove {}",
               failed.empty() ? fmt::format("{}: {}", path, std::strerror(errno)) : failed);
  return removed;
}

}  // namespace genprm
