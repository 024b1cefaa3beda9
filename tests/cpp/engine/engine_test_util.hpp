#pragma once
// Shared by the engine tests: GENPRM_TEST_DEVICE (cpu, cuda) and GENPRM_TEST_DTYPE (float32,
// bfloat16, float16) select where tests/data/tiny_qwen2_a runs (scripts/device-check.sh). Exact
// comparisons need float32: in lower precision only the tests that compare the engine with
// itself run.
#include <cstdlib>
#include <string>

#include "genprm/engine/engine.hpp"
#include "genprm/model/device.hpp"

namespace genprm::test {

inline std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}
inline bool low_precision() { return parse_dtype(env_or("GENPRM_TEST_DTYPE", "float32")) != at::kFloat; }

inline const Qwen2Model& tiny() {
  static Qwen2Model m = Qwen2Model::load(std::string(GENPRM_TEST_DATA) + "/tiny_qwen2_a",
                                         parse_device(env_or("GENPRM_TEST_DEVICE", "cpu")),
                                         parse_dtype(env_or("GENPRM_TEST_DTYPE", "float32")));
  return m;
}

}  // namespace genprm::test
