#pragma once
// Shared by the engine tests: GENPRM_TEST_DEVICE (cpu, cuda) and GENPRM_TEST_DTYPE (float32,
// bfloat16, float16) select where tests/data/tiny_qwen2_a runs (scripts/device-check.sh). Exact
// comparisons need float32: in lower precision only the tests that compare the engine with
// itself run.
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "genprm/engine/engine.hpp"
#include "genprm/model/device.hpp"
#include "genprm/util/json.hpp"

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

/// The Hugging Face greedy golden of tiny_qwen2_a (tiny_qwen2_a_greedy.json): its rows, and one
/// greedy 24-token request with the top-2 log-probabilities per row.
inline Json golden_rows() { return read_json_file(std::string(GENPRM_TEST_DATA) + "/tiny_qwen2_a_greedy.json"); }
inline std::vector<GenerationRequest> golden_requests(const Json& rows) {
  std::vector<GenerationRequest> reqs;
  for (const auto& row : rows) {
    GenerationRequest r;
    r.prompt_ids = row.at("prompt").get<std::vector<int32_t>>();
    r.params.temperature = 0.0f;
    r.params.max_tokens = 24;
    r.params.ignore_eos = true;
    r.params.logprobs = 2;
    reqs.push_back(std::move(r));
  }
  return reqs;
}

/// Each output has the golden tokens, up to the first position where it differs; there the top-2
/// log-probabilities must be a near-tie (rounding may pick either). `what` names the run.
inline void check_golden(const Json& rows, const std::vector<GenerationOutput>& outs, const std::string& what) {
  for (size_t i = 0; i < rows.size(); ++i) {
    auto want = rows[i].at("greedy").get<std::vector<int32_t>>();
    const auto& s = outs.at(i).samples.at(0);
    REQUIRE(s.token_ids.size() == want.size());
    for (size_t k = 0; k < want.size(); ++k) {
      if (s.token_ids[k] == want[k]) continue;
      INFO("prompt " << i << " position " << k << " " << what);
      CHECK(std::abs(s.logprobs[k].top[0].second - s.logprobs[k].top[1].second) < 1e-4);
      break;
    }
  }
}

}  // namespace genprm::test
