#pragma once
// Minimal leveled logging to stderr. Level from GENPRM_LOG (error|warn|info|debug), default warn.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fmt/format.h>

namespace genprm {

enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3 };

inline LogLevel log_level() {
  static const LogLevel level = [] {
    const char* s = std::getenv("GENPRM_LOG");
    if (s == nullptr) return LogLevel::Warn;
    if (std::strcmp(s, "error") == 0) return LogLevel::Error;
    if (std::strcmp(s, "info") == 0) return LogLevel::Info;
    if (std::strcmp(s, "debug") == 0) return LogLevel::Debug;
    return LogLevel::Warn;
  }();
  return level;
}

template <typename... Args>
void log(LogLevel level, fmt::format_string<Args...> f, Args&&... args) {
  if (static_cast<int>(level) > static_cast<int>(log_level())) return;
  static const char* names[] = {"error", "warn", "info", "debug"};
  std::string msg = fmt::format(f, std::forward<Args>(args)...);
  std::fprintf(stderr, "[genprm %s] %s\n", names[static_cast<int>(level)], msg.c_str());
}

}  // namespace genprm
