// Loads a Qwen2 model directory and greedy-decodes a few tokens with the reference forward.
//   genprm_example <model_dir> [token ids...]
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "genprm/model/qwen2.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR [TOKEN_ID ...]\n", argv[0]);
    return 2;
  }
  try {
    auto model = genprm::Qwen2Model::load(argv[1], at::kCPU, at::kFloat);
    std::vector<int64_t> ids;
    for (int i = 2; i < argc; ++i) ids.push_back(std::atoll(argv[i]));
    if (ids.empty()) ids = {1, 2, 3, 4};
    std::printf("model: %lld layers, hidden %lld, vocab %lld\n",
                static_cast<long long>(model.config().num_hidden_layers),
                static_cast<long long>(model.config().hidden_size),
                static_cast<long long>(model.config().vocab_size));
    std::printf("greedy:");
    for (int step = 0; step < 8; ++step) {
      at::Tensor logits = model.forward_full(at::tensor(ids, at::kLong));
      int64_t next = logits[-1].argmax().item<int64_t>();
      ids.push_back(next);
      std::printf(" %lld", static_cast<long long>(next));
    }
    std::printf("\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
