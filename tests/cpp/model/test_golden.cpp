// Golden equality with tests/data/tiny_qwen2_a* (produced by HF transformers, see README there).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "genprm/io/safetensors_torch.hpp"
#include "genprm/util/json.hpp"
#include "model_test_util.hpp"

using namespace genprm;
using genprm::test::max_abs_diff;

namespace {

const std::string kData = GENPRM_TEST_DATA;

struct Golden {
  SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open(kData + "/tiny_qwen2_a_golden.safetensors");
  Json greedy = read_json_file(kData + "/tiny_qwen2_a_greedy.json");
  at::Tensor get(const std::string& name) const { return to_tensor(ckpt, name).clone(); }
};

}  // namespace

TEST_CASE("golden: prefill logits of the 4 prompts equal HF (forward_full and paged prefill)") {
  const at::ScalarType dt = test::test_dtype();
  const Qwen2Model model = Qwen2Model::load(kData + "/tiny_qwen2_a", test::test_device(), dt);
  CHECK(model.config().vocab_size == 512);
  CHECK(model.num_parameters() == 158272);
  const Golden g;
  // In float32 the issue asks 1e-4; in bf16/fp16 compute the bound only catches gross errors.
  const double tol = dt == at::kFloat ? 1e-4 : 0.5;
  double worst_full = 0, worst_paged = 0;
  for (int i = 0; i < 4; ++i) {
    const at::Tensor ids = g.get("input_ids_" + std::to_string(i));
    const at::Tensor ref = g.get("logits_" + std::to_string(i));
    const at::Tensor full = model.forward_full(ids).cpu();
    REQUIRE(full.sizes() == ref.sizes());
    CHECK((full.scalar_type() == at::kFloat));
    worst_full = std::max(worst_full, max_abs_diff(full, ref));
    test::Pager pager(model, 32, 4, 100 + i);
    test::Pager::Seq s;
    s.tokens = std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
    const at::Tensor paged = pager.step({&s}, {ids.numel()});
    worst_paged = std::max(worst_paged, max_abs_diff(paged, ref));
  }
  MESSAGE(fmt::format("max |logits - golden|: forward_full {:.3g}, paged prefill {:.3g} ({})", worst_full, worst_paged,
                      dtype_name(dt)));
  CHECK(worst_full <= tol);
  CHECK(worst_paged <= tol);
}

TEST_CASE("golden: 24 greedy tokens and last_logits_after_gen through the paged KV cache") {
  const at::ScalarType dt = test::test_dtype();
  const Qwen2Model model = Qwen2Model::load(kData + "/tiny_qwen2_a", test::test_device(), dt);
  const Golden g;
  const double tol = dt == at::kFloat ? 1e-4 : 0.5;
  // Margins in bf16 are coarser: a mismatch is accepted where the reference top-2 gap is small.
  const double margin_ok = dt == at::kFloat ? 1e-4 : 0.25;
  double worst_last = 0;
  int mismatches = 0;
  for (int i = 0; i < 4; ++i) {
    const Json& row = g.greedy.at(static_cast<size_t>(i));
    const auto prompt = row.at("prompt").get<std::vector<int64_t>>();
    const auto expect = row.at("greedy").get<std::vector<int64_t>>();
    REQUIRE(expect.size() == 24);
    // Block size 4 and shuffled blocks: decode crosses many block boundaries.
    test::Pager pager(model, 64, 4, 7 + i);
    test::Pager::Seq s;
    s.tokens = prompt;
    at::Tensor logits = pager.step({&s}, {static_cast<int64_t>(prompt.size())});
    bool diverged = false;
    for (size_t t = 0; t < expect.size(); ++t) {
      const at::Tensor last = logits[logits.size(0) - 1];
      const int64_t ours = last.argmax().item<int64_t>();
      if (!diverged && ours != expect[t]) {
        // Allowed only where the two candidates are within rounding of each other.
        const double gap = std::abs(last[ours].item<double>() - last[expect[t]].item<double>());
        MESSAGE(fmt::format("prompt {} token {}: ours {} vs HF {}, logit gap {:.3g}", i, t, ours, expect[t], gap));
        CHECK(gap < margin_ok);
        ++mismatches;
        diverged = true;  // later tokens depend on the choice; keep feeding HF's tokens anyway
      }
      s.tokens.push_back(expect[t]);  // teacher-force HF's tokens: the cache sees HF's sequence
      logits = pager.step({&s}, {1});
    }
    const at::Tensor ref = g.get("last_logits_after_gen_" + std::to_string(i));
    worst_last = std::max(worst_last, max_abs_diff(logits[0], ref));
  }
  MESSAGE(fmt::format("max |last_logits_after_gen - golden| {:.3g}; greedy mismatches {} ({})", worst_last,
                      mismatches, dtype_name(dt)));
  CHECK(worst_last <= tol);
  if (dt == at::kFloat) CHECK(mismatches == 0);
}

TEST_CASE("golden: the bf16 twin loads (weights converted on load) and is close") {
  const Golden g;
  const at::Device dev = test::test_device();
  double worst_f32 = 0, worst_bf16 = 0;
  const Qwen2Model twin32 = Qwen2Model::load(kData + "/tiny_qwen2_a_bf16", dev, at::kFloat);
  const Qwen2Model twin16 = Qwen2Model::load(kData + "/tiny_qwen2_a_bf16", dev, at::kBFloat16);
  CHECK((twin16.dtype() == at::kBFloat16));
  for (int i = 0; i < 4; ++i) {
    const at::Tensor ids = g.get("input_ids_" + std::to_string(i));
    const at::Tensor ref = g.get("logits_" + std::to_string(i));
    worst_f32 = std::max(worst_f32, max_abs_diff(twin32.forward_full(ids), ref));
    worst_bf16 = std::max(worst_bf16, max_abs_diff(twin16.forward_full(ids), ref));
  }
  MESSAGE(fmt::format("bf16 twin vs float32 golden: max |diff| {:.3g} (float32 compute), {:.3g} (bfloat16 compute)",
                      worst_f32, worst_bf16));
  CHECK(worst_f32 > 0);  // the weights are rounded: equality would mean the twin was not read
  CHECK(worst_f32 < 0.1);
  CHECK(worst_bf16 < 0.5);
}
