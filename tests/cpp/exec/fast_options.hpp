#pragma once
// SandboxOptions for the exec tests: the project's interpreter, short timeouts.
#include "genprm/exec/sandbox.hpp"

inline genprm::SandboxOptions fast_options(int workers = 2) {
  genprm::SandboxOptions o;
  o.python = GENPRM_PYTHON;
  o.timeout_s = 1.0;
  o.kill_grace_s = 0.3;
  o.workers = workers;
  return o;
}
