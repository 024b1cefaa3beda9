#pragma once
// Errors with clear messages. Every check names the value and the rule it broke.
//
// genprm::Error       -> Python RuntimeError (internal failures, engine state)
// genprm::ValueError  -> Python ValueError   (bad input: files, arguments, configs)
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace genprm {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Bad input from the caller: a malformed file, an out-of-range argument.
class ValueError : public Error {
 public:
  using Error::Error;
};

/// A resource limit was hit (e.g. KV cache exhausted with nothing to preempt).
class ResourceError : public Error {
 public:
  using Error::Error;
};

}  // namespace genprm

/// Throws genprm::Error(fmt::format(...)) when `cond` is false.
#define GENPRM_CHECK(cond, ...)                                  \
  do {                                                           \
    if (!(cond)) throw ::genprm::Error(::fmt::format(__VA_ARGS__)); \
  } while (0)

/// Throws genprm::ValueError(fmt::format(...)) when `cond` is false: use for caller input.
#define GENPRM_CHECK_ARG(cond, ...)                                   \
  do {                                                                \
    if (!(cond)) throw ::genprm::ValueError(::fmt::format(__VA_ARGS__)); \
  } while (0)
