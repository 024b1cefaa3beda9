#pragma once
// Helpers of the model tests: the device/dtype under test (GENPRM_TEST_DEVICE, GENPRM_TEST_DTYPE,
// default cpu/float32), random Qwen2 weights, and a minimal block pager that drives
// Qwen2Model::forward the way the engine does (shuffled physical blocks, chunked prefill, decode).
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <execinfo.h>
#include <ucontext.h>
#include <unistd.h>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <doctest/doctest.h>

#include "genprm/model/device.hpp"
#include "genprm/model/qwen2.hpp"

namespace genprm::test {

/// With GENPRM_TEST_BACKTRACE=1, a crash prints a native backtrace to stderr (for devices
/// without a debugger); call at the start of a test case (doctest installs its own handler first).
inline void backtrace_on_crash() {
  const char* e = std::getenv("GENPRM_TEST_BACKTRACE");
  if (!e || std::string(e) != "1") return;
  struct sigaction sa {};
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sa.sa_sigaction = [](int sig, siginfo_t* info, void* uctx) {
    const auto* uc = static_cast<const ucontext_t*>(uctx);
    void* pc = reinterpret_cast<void*>(uc->uc_mcontext.gregs[REG_RIP]);
    Dl_info dl{};
    ::dladdr(pc, &dl);
    char buf[512];
    const int n = std::snprintf(buf, sizeof buf, "signal %d at address %p, pc %p in %s (%s+%#lx), thread %ld\n", sig,
                                info->si_addr, pc, dl.dli_fname ? dl.dli_fname : "?", dl.dli_sname ? dl.dli_sname : "?",
                                static_cast<unsigned long>(static_cast<const char*>(pc) -
                                                           static_cast<const char*>(dl.dli_saddr ? dl.dli_saddr : dl.dli_fbase)),
                                static_cast<long>(::gettid()));
    (void)!::write(2, buf, static_cast<size_t>(n));
    void* frames[64];
    ::backtrace_symbols_fd(frames, ::backtrace(frames, 64), 2);
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  };
  sigaction(SIGSEGV, &sa, nullptr);
  sigaction(SIGBUS, &sa, nullptr);
}

inline at::Device test_device() {
  const char* d = std::getenv("GENPRM_TEST_DEVICE");
  return parse_device(d && *d ? d : "cpu");
}
inline at::ScalarType test_dtype() {
  const char* d = std::getenv("GENPRM_TEST_DTYPE");
  return parse_dtype(d && *d ? d : "float32");
}
/// Max abs logit difference accepted between two computations of the same logits `ref` in
/// `dtype` (different summation orders): the 1e-4 in float32; in half precision a few
/// units in the last place of the largest logit.
inline double same_math_tolerance(at::ScalarType dtype, const at::Tensor& ref) {
  if (dtype == at::kFloat) return 1e-4;
  const double peak = ref.abs().max().item<double>();
  return (dtype == at::kHalf ? 4e-3 : 3e-2) * std::max(peak, 1.0);
}

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kCPU, at::kDouble) - b.to(at::kCPU, at::kDouble)).abs().max().item<double>();
}

/// A random small config: vocab, hidden, layers, heads, kv heads, head_dim (0: hidden / heads).
inline ModelConfig small_config(int64_t vocab, int64_t hidden, int64_t layers, int64_t heads, int64_t kv_heads,
                                int64_t head_dim, double theta, bool tied) {
  ModelConfig c;
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = hidden * 2 + 8;
  c.num_hidden_layers = layers;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv_heads;
  c.head_dim = head_dim ? head_dim : hidden / heads;
  c.max_position_embeddings = 4096;
  c.rope_theta = theta;
  c.tie_word_embeddings = tied;
  c.rms_norm_eps = 1e-6;
  return c;
}

/// Random weights with O(1) activations (so that 1e-4 on the logits is a meaningful bound).
inline std::map<std::string, at::Tensor> random_weights(const ModelConfig& c, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const auto f = at::TensorOptions().dtype(at::kFloat);
  auto rnd = [&](std::vector<int64_t> shape, double scale) { return at::randn(shape, gen, f) * scale; };
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  std::map<std::string, at::Tensor> w;
  w["model.embed_tokens.weight"] = rnd({c.vocab_size, H}, 1.0);
  w["model.norm.weight"] = 1.0 + rnd({H}, 0.1);
  if (!c.tie_word_embeddings) w["lm_head.weight"] = rnd({c.vocab_size, H}, 1.0 / std::sqrt(double(H)));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    w[p + "input_layernorm.weight"] = 1.0 + rnd({H}, 0.1);
    w[p + "post_attention_layernorm.weight"] = 1.0 + rnd({H}, 0.1);
    const double s = 1.0 / std::sqrt(double(H));
    w[p + "self_attn.q_proj.weight"] = rnd({c.num_attention_heads * hd, H}, 2 * s);
    w[p + "self_attn.k_proj.weight"] = rnd({c.num_key_value_heads * hd, H}, 2 * s);
    w[p + "self_attn.v_proj.weight"] = rnd({c.num_key_value_heads * hd, H}, s);
    w[p + "self_attn.q_proj.bias"] = rnd({c.num_attention_heads * hd}, 0.2);
    w[p + "self_attn.k_proj.bias"] = rnd({c.num_key_value_heads * hd}, 0.2);
    w[p + "self_attn.v_proj.bias"] = rnd({c.num_key_value_heads * hd}, 0.2);
    w[p + "self_attn.o_proj.weight"] = rnd({H, c.num_attention_heads * hd}, 1.0 / std::sqrt(double(c.num_attention_heads * hd)));
    w[p + "mlp.gate_proj.weight"] = rnd({I, H}, s);
    w[p + "mlp.up_proj.weight"] = rnd({I, H}, s);
    w[p + "mlp.down_proj.weight"] = rnd({H, I}, 1.0 / std::sqrt(double(I)));
  }
  return w;
}

inline std::vector<int64_t> random_tokens(int64_t n, int64_t vocab, std::mt19937_64& rng) {
  std::uniform_int_distribution<int64_t> d(0, vocab - 1);
  std::vector<int64_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = d(rng);
  return t;
}

inline at::Tensor ids_tensor(const std::vector<int64_t>& v) { return at::tensor(v, at::kLong); }

/// The engine's side of the contract, minimal: sequences own shuffled physical blocks.
class Pager {
 public:
  struct Seq {
    std::vector<int64_t> tokens;  ///< every token given so far
    std::vector<int64_t> blocks;  ///< physical blocks
    int64_t cached = 0;           ///< tokens whose K/V are in the cache
  };

  Pager(const Qwen2Model& model, int64_t num_blocks, int64_t block_size, uint64_t seed)
      : model_(model), kv_(model.allocate_kv(num_blocks, block_size)), free_(static_cast<size_t>(num_blocks)) {
    std::iota(free_.begin(), free_.end(), 0);
    std::shuffle(free_.begin(), free_.end(), std::mt19937_64(seed));
  }

  /// One forward step: seqs[i] computes its next n[i] tokens from `tokens`. Returns the logits
  /// of every new row [sum n, vocab] (float32, CPU).
  at::Tensor step(const std::vector<Seq*>& seqs, const std::vector<int64_t>& n) {
    ForwardBatch b;
    std::vector<int64_t> ids, pos, slots;
    b.query_start.push_back(0);
    size_t max_blocks = 1;
    for (size_t i = 0; i < seqs.size(); ++i) {
      Seq& s = *seqs[i];
      const int64_t end = s.cached + n[i];
      REQUIRE(end <= static_cast<int64_t>(s.tokens.size()));
      while (static_cast<int64_t>(s.blocks.size()) * kv_.block_size < end) {
        REQUIRE(!free_.empty());
        s.blocks.push_back(free_.back());
        free_.pop_back();
      }
      for (int64_t p = s.cached; p < end; ++p) {
        ids.push_back(s.tokens[static_cast<size_t>(p)]);
        pos.push_back(p);
        slots.push_back(s.blocks[static_cast<size_t>(p / kv_.block_size)] * kv_.block_size + p % kv_.block_size);
      }
      s.cached = end;
      b.query_start.push_back(static_cast<int64_t>(ids.size()));
      b.context_lens.push_back(end);
      max_blocks = std::max(max_blocks, s.blocks.size());
    }
    at::Tensor tables = at::zeros({static_cast<int64_t>(seqs.size()), static_cast<int64_t>(max_blocks)}, at::kLong);
    for (size_t i = 0; i < seqs.size(); ++i)
      for (size_t j = 0; j < seqs[i]->blocks.size(); ++j) tables[int64_t(i)][int64_t(j)] = seqs[i]->blocks[j];
    const at::Device dev = model_.device();
    b.token_ids = ids_tensor(ids).to(dev);
    b.positions = ids_tensor(pos).to(dev);
    b.slot_mapping = ids_tensor(slots).to(dev);
    b.block_tables = tables.to(dev);
    b.logits_indices = at::arange(static_cast<int64_t>(ids.size()), at::kLong).to(dev);
    return model_.forward(b, kv_).to(at::kCPU);
  }

  KvCacheView& kv() { return kv_; }

 private:
  const Qwen2Model& model_;
  KvCacheView kv_;
  std::vector<int64_t> free_;
};

}  // namespace genprm::test
