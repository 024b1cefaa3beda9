#pragma once
// The Qwen2 decoder (also plain Llama checkpoints: same blocks, optional biases) in libtorch,
// computed as Hugging Face's Qwen2ForCausalLM computes it:
//   x = embed(ids)
//   per layer: x += o_proj(attn(rope(q), rope(k), v))   with q|k|v = qkv_proj(rms_norm(x)) (+ bias)
//              x += down(silu(gate) * up)               with gate|up = gate_up_proj(rms_norm(x))
//   logits = lm_head(rms_norm(x))  (lm_head = embed when tie_word_embeddings), returned float32.
// q/k/v and gate/up are fused into one matmul each at load time. Weights stored as F32/BF16/F16
// are converted to the compute dtype (float32, bfloat16 or float16) on load. Same source on CPU
// and CUDA; on CUDA with genprm's kernels (model/cuda_ops.hpp) the residual add is fused into the
// next RMSNorm, RoPE into the K/V write, and attention reads the paged cache in place.
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "genprm/io/model_config.hpp"
#include "genprm/io/safetensors.hpp"
#include "genprm/io/safetensors_torch.hpp"
#include "genprm/model/attention.hpp"
#include "genprm/model/cuda_ops.hpp"
#include "genprm/model/device.hpp"
#include "genprm/model/forward_batch.hpp"
#include "genprm/model/rms_norm.hpp"
#include "genprm/model/rope.hpp"
#include "genprm/util/error.hpp"

namespace genprm {

class Qwen2Model {
 public:
  /// Where weights come from, by Hugging Face tensor name (checkpoint, in-memory map, ...).
  struct WeightSource {
    std::string what;                                   ///< names the source in error messages
    std::function<bool(const std::string&)> contains;   ///< is tensor `name` present?
    std::function<at::Tensor(const std::string&)> get;  ///< tensor `name` (any float dtype/device)
  };

  /// Reads `model_dir`/config.json and the safetensors weights (single file or sharded index).
  /// Throws ValueError naming the file and tensor for missing tensors, wrong shapes or dtypes.
  static Qwen2Model load(const std::string& model_dir, at::Device device = at::kCPU,
                         at::ScalarType dtype = at::kFloat) {
    ModelConfig cfg = ModelConfig::from_file(model_dir + "/config.json");
    const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open(model_dir);
    WeightSource src{ckpt.path(), [&](const std::string& n) { return ckpt.contains(n); },
                     [&](const std::string& n) { return to_tensor(ckpt, n); }};
    return from_weights(std::move(cfg), src, device, dtype);
  }

  /// Builds the model from named tensors (e.g. made in memory by a test or a benchmark).
  static Qwen2Model from_tensors(ModelConfig cfg, const std::map<std::string, at::Tensor>& tensors,
                                 at::Device device = at::kCPU, at::ScalarType dtype = at::kFloat) {
    WeightSource src{"in-memory weights", [&](const std::string& n) { return tensors.count(n) != 0; },
                     [&](const std::string& n) {
                       auto it = tensors.find(n);
                       GENPRM_CHECK_ARG(it != tensors.end(), "in-memory weights: missing tensor '{}'", n);
                       return it->second;
                     }};
    return from_weights(std::move(cfg), src, device, dtype);
  }

  static Qwen2Model from_weights(ModelConfig cfg, const WeightSource& src, at::Device device, at::ScalarType dtype) {
    GENPRM_CHECK_ARG(dtype == at::kFloat || dtype == at::kBFloat16 || dtype == at::kHalf,
                     "Qwen2Model: compute dtype {} is not supported (float32, bfloat16, float16)",
                     c10::toString(dtype));
    c10::InferenceMode guard;
    Qwen2Model m(std::move(cfg), device, dtype);
    const ModelConfig& c = m.cfg_;
    const int64_t H = c.hidden_size, I = c.intermediate_size, nh = c.num_attention_heads,
                  nkv = c.num_key_value_heads, hd = c.head_dim, V = c.vocab_size;
    auto load = [&](const std::string& name, std::vector<int64_t> shape) {
      GENPRM_CHECK_ARG(src.contains(name), "{}: missing tensor '{}'", src.what, name);
      at::Tensor t = src.get(name);
      GENPRM_CHECK_ARG(t.is_floating_point(), "{}: tensor '{}' has dtype {}; expected F32, BF16 or F16",
                       src.what, name, c10::toString(t.scalar_type()));
      GENPRM_CHECK_ARG(t.sizes().vec() == shape, "{}: tensor '{}' has shape [{}], config.json implies [{}]",
                       src.what, name, fmt::join(t.sizes().vec(), ", "), fmt::join(shape, ", "));
      return t.to(device, dtype).contiguous();
    };
    auto load_opt = [&](const std::string& name, std::vector<int64_t> shape) {
      return src.contains(name) ? load(name, std::move(shape)) : at::Tensor();
    };

    m.embed_ = load("model.embed_tokens.weight", {V, H});
    m.final_norm_ = load("model.norm.weight", {H});
    if (c.tie_word_embeddings) {
      m.lm_head_ = m.embed_;
    } else {
      m.lm_head_ = load("lm_head.weight", {V, H});
    }
    m.layers_.reserve(static_cast<size_t>(c.num_hidden_layers));
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      const std::string p = fmt::format("model.layers.{}.", l);
      Layer L;
      L.input_norm = load(p + "input_layernorm.weight", {H});
      L.post_norm = load(p + "post_attention_layernorm.weight", {H});
      L.qkv_w = at::cat({load(p + "self_attn.q_proj.weight", {nh * hd, H}),
                         load(p + "self_attn.k_proj.weight", {nkv * hd, H}),
                         load(p + "self_attn.v_proj.weight", {nkv * hd, H})},
                        0);  // [(nh + 2 nkv) * hd, H]
      const bool has_bias = src.contains(p + "self_attn.q_proj.bias");
      GENPRM_CHECK_ARG(has_bias || !c.attention_bias,
                       "{}: missing tensor '{}' (model_type {} has q/k/v biases)", src.what,
                       p + "self_attn.q_proj.bias", c.model_type);
      if (has_bias) {
        L.qkv_b = at::cat({load(p + "self_attn.q_proj.bias", {nh * hd}), load(p + "self_attn.k_proj.bias", {nkv * hd}),
                           load(p + "self_attn.v_proj.bias", {nkv * hd})},
                          0);
      }
      L.o_w = load(p + "self_attn.o_proj.weight", {H, nh * hd});
      L.o_b = load_opt(p + "self_attn.o_proj.bias", {H});  // llama with attention_bias only
      L.gate_up_w = at::cat({load(p + "mlp.gate_proj.weight", {I, H}), load(p + "mlp.up_proj.weight", {I, H})},
                            0);  // [2I, H]
      L.down_w = load(p + "mlp.down_proj.weight", {H, I});
      m.layers_.push_back(std::move(L));
    }
    return m;
  }

  const ModelConfig& config() const { return cfg_; }
  at::Device device() const { return device_; }
  at::ScalarType dtype() const { return dtype_; }
  /// Parameters as stored in the checkpoint (the tied lm head counted once).
  int64_t num_parameters() const {
    int64_t n = embed_.numel() + final_norm_.numel() + (cfg_.tie_word_embeddings ? 0 : lm_head_.numel());
    for (const Layer& L : layers_)
      for (const at::Tensor* t : {&L.input_norm, &L.post_norm, &L.qkv_w, &L.qkv_b, &L.o_w, &L.o_b, &L.gate_up_w, &L.down_w})
        if (t->defined()) n += t->numel();
    return n;
  }

  /// Reference path without cache: ids [T] int64 (any device) -> logits [T, vocab] float32 on
  /// the model's device, position t attending to positions 0..t.
  at::Tensor forward_full(const at::Tensor& ids) const {
    GENPRM_CHECK_ARG(ids.dim() == 1 && ids.size(0) >= 1, "forward_full: ids must be [T] with T >= 1, got shape [{}]",
                     fmt::join(ids.sizes().vec(), ", "));
    if (ids.is_cpu()) check_token_range(ids, "forward_full");  // no device sync for device ids
    const at::Tensor tok = ids.to(device_, at::kLong);
    const double scale = attention_scale();
    at::Tensor x;
    {
      c10::InferenceMode guard;
      const at::Tensor positions = at::arange(tok.size(0), index_options());
      x = run_layers(tok, positions, nullptr, [&](int64_t, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
        return model::causal_attention(q, k, v, scale);
      });
    }
    return lm_logits(x);
  }

  /// Paged path: computes the new tokens of a packed batch, writing their K/V into `kv` at
  /// batch.slot_mapping and attending over each sequence's blocks (batch.block_tables,
  /// batch.context_lens). Returns logits [R, vocab] float32 for batch.logits_indices.
  /// Throws ValueError when the host-side shapes are inconsistent or `kv` does not fit this model.
  at::Tensor forward(const ForwardBatch& batch, KvCacheView& kv) const {
    check_kv(kv);
    const model::PagedAttentionPlan plan =
        model::PagedAttentionPlan::build(batch, kv.block_size, device_, attention_kernel());
    if (batch.token_ids.is_cpu()) check_token_range(batch.token_ids, "forward");
    const at::Tensor tok = batch.token_ids.to(device_, at::kLong);
    const at::Tensor positions = batch.positions.to(device_, at::kLong);
    const at::Tensor slots = batch.slot_mapping.to(device_, at::kLong);
    const double scale = attention_scale();
    at::Tensor x;
    {
      c10::InferenceMode guard;
      KvWrite write{&kv, slots};
      x = run_layers(tok, positions, &write, [&](int64_t l, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
        return model::paged_attention(plan, q, k, v, kv.k[static_cast<size_t>(l)], kv.v[static_cast<size_t>(l)], scale);
      });
    }
    const at::Tensor rows = batch.logits_indices.to(device_, at::kLong);
    return lm_logits(x.index_select(0, rows));
  }

  /// Decode step over fixed-shape device inputs (DecodeInputs): no host synchronisation and no
  /// shape that depends on the values, so it can be captured as a CUDA graph. Writes each row's
  /// K/V at its slot and returns logits [B, vocab] float32 for every row (padding included).
  /// Attention reads the blocks in place with genprm's CUDA kernel; elsewhere it gathers the
  /// B x W blocks of the tables (the ATen reference, also used on the CPU).
  at::Tensor forward_decode(const DecodeInputs& in, KvCacheView& kv) const {
    check_kv(kv);
    const int64_t B = in.token_ids.numel();
    GENPRM_CHECK_ARG(B >= 1 && in.positions.numel() == B && in.slot_mapping.numel() == B &&
                         in.context_lens.numel() == B && in.block_tables.dim() == 2 && in.block_tables.size(0) == B,
                     "forward_decode: inputs must be [B] (block_tables [B, W]) with one B, got token_ids [{}]", B);
    const at::Tensor tok = in.token_ids.to(at::kLong);
    const at::Tensor positions = in.positions.to(at::kLong);
    const at::Tensor slots = in.slot_mapping.to(at::kLong);
    const int64_t nkv = cfg_.num_key_value_heads, hd = cfg_.head_dim;
    const int64_t W = in.block_tables.size(1), keys = W * kv.block_size;
    const double scale = attention_scale();
    at::Tensor x;
    {
      c10::InferenceMode guard;
      KvWrite write{&kv, slots};
      if (attention_kernel()) {
        const int64_t splits = cuda_ops::splits_for(keys);
        x = run_layers(tok, positions, &write, [&](int64_t l, const at::Tensor& q, const at::Tensor&, const at::Tensor&) {
          return cuda_ops::paged_attention(q.contiguous(), kv.k[static_cast<size_t>(l)], kv.v[static_cast<size_t>(l)],
                                           in.block_tables, in.context_lens, at::Tensor(), scale, splits);
        });
      } else {
        const at::Tensor blocks = in.block_tables.reshape({-1}).to(at::kLong);
        const at::Tensor valid =
            at::arange(keys, index_options()).unsqueeze(0) < in.context_lens.to(at::kLong).unsqueeze(1);
        x = run_layers(tok, positions, &write, [&](int64_t l, const at::Tensor& q, const at::Tensor&, const at::Tensor&) {
          const at::Tensor k = kv.k[static_cast<size_t>(l)].index_select(0, blocks).view({B, keys, nkv, hd});
          const at::Tensor v = kv.v[static_cast<size_t>(l)].index_select(0, blocks).view({B, keys, nkv, hd});
          return model::decode_attention(q, k, v, valid, scale);
        });
      }
    }
    return lm_logits(x);
  }

  /// An empty paged cache for this model: num_blocks x block_size slots per layer, zero-filled
  /// (attention reads whole blocks and masks the unused slots: they must hold finite values).
  KvCacheView allocate_kv(int64_t num_blocks, int64_t block_size) const {
    GENPRM_CHECK_ARG(num_blocks > 0 && block_size > 0, "allocate_kv: num_blocks {} and block_size {} must be > 0",
                     num_blocks, block_size);
    KvCacheView kv;
    kv.block_size = block_size;
    const auto opts = at::TensorOptions().dtype(dtype_).device(device_);
    for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
      kv.k.push_back(at::zeros({num_blocks, block_size, cfg_.num_key_value_heads, cfg_.head_dim}, opts));
      kv.v.push_back(at::zeros({num_blocks, block_size, cfg_.num_key_value_heads, cfg_.head_dim}, opts));
    }
    return kv;
  }

  /// Bytes of K and V, all layers, for one block of `block_size` slots.
  size_t kv_bytes_per_block(int64_t block_size) const {
    return static_cast<size_t>(2 * cfg_.num_hidden_layers * block_size * cfg_.num_key_value_heads * cfg_.head_dim) *
           c10::elementSize(dtype_);
  }

 private:
  struct Layer {
    at::Tensor input_norm, post_norm;  // [H]
    at::Tensor qkv_w, qkv_b;           // [(nh + 2 nkv) * hd, H], [(nh + 2 nkv) * hd] (may be undefined)
    at::Tensor o_w, o_b;               // [H, nh * hd], [H] (undefined for qwen2)
    at::Tensor gate_up_w;              // [2 I, H]
    at::Tensor down_w;                 // [H, I]
  };

  Qwen2Model(ModelConfig cfg, at::Device device, at::ScalarType dtype)
      : cfg_(std::move(cfg)), device_(with_index(device)), dtype_(dtype),
        rope_(cfg_.head_dim, cfg_.rope_theta, device) {}

  /// "cuda" -> "cuda:<current>", so that device() equals the device of every tensor made on it.
  static at::Device with_index(at::Device d) {
    return d.is_cuda() && !d.has_index() ? at::empty({0}, at::TensorOptions().device(d)).device() : d;
  }

  at::TensorOptions index_options() const { return at::TensorOptions().dtype(at::kLong).device(device_); }
  double attention_scale() const { return 1.0 / std::sqrt(static_cast<double>(cfg_.head_dim)); }

  void check_token_range(const at::Tensor& tok, const char* op) const {
    if (tok.numel() == 0) return;
    const int64_t lo = tok.min().item().toLong(), hi = tok.max().item().toLong();
    GENPRM_CHECK_ARG(lo >= 0 && hi < cfg_.vocab_size, "{}: token ids must be in [0, {}), got range [{}, {}]", op,
                     cfg_.vocab_size, lo, hi);
  }

  void check_kv(const KvCacheView& kv) const {
    const auto L = static_cast<size_t>(cfg_.num_hidden_layers);
    GENPRM_CHECK_ARG(kv.k.size() == L && kv.v.size() == L, "forward: kv has {} K and {} V layers, model has {}",
                     kv.k.size(), kv.v.size(), L);
    GENPRM_CHECK_ARG(kv.block_size > 0, "forward: kv.block_size {} must be > 0", kv.block_size);
    for (size_t l = 0; l < L; ++l) {
      for (const at::Tensor* t : {&kv.k[l], &kv.v[l]}) {
        GENPRM_CHECK_ARG(t->defined() && t->dim() == 4 && t->size(1) == kv.block_size &&
                             t->size(2) == cfg_.num_key_value_heads && t->size(3) == cfg_.head_dim,
                         "forward: kv layer {} must be [num_blocks, {}, {}, {}]", l, kv.block_size,
                         cfg_.num_key_value_heads, cfg_.head_dim);
        GENPRM_CHECK_ARG(t->scalar_type() == dtype_ && t->device() == device_ && t->is_contiguous(),
                         "forward: kv layer {} must be contiguous {} on {} (got {} on {})", l,
                         c10::toString(dtype_), device_.str(), c10::toString(t->scalar_type()), t->device().str());
      }
    }
  }

  /// Where the new tokens' K/V go (the paged cache, at slots [T] int64).
  struct KvWrite {
    KvCacheView* kv;
    at::Tensor slots;
  };

  /// genprm's CUDA kernels apply to this model (device, dtype and shape).
  bool attention_kernel() const {
    return cuda_ops::use_kernels(embed_) &&
           cuda_ops::paged_attention_supported(cfg_.num_attention_heads, cfg_.num_key_value_heads, cfg_.head_dim,
                                               dtype_);
  }

  /// ids, positions: [T] int64 on device -> hidden states [T, H] before the final norm. With
  /// `write`, each layer's new K/V are written into the cache before attention (the new tokens
  /// attend to themselves through it). attn(layer, q [T, nh, hd], k [T, nkv, hd], v [T, nkv, hd])
  /// -> [T, nh, hd].
  template <class Attn>
  at::Tensor run_layers(const at::Tensor& ids, const at::Tensor& positions, const KvWrite* write, Attn&& attn) const {
    const int64_t T = ids.size(0);
    const int64_t nh = cfg_.num_attention_heads, nkv = cfg_.num_key_value_heads, hd = cfg_.head_dim;
    const int64_t I = cfg_.intermediate_size;
    const double eps = cfg_.rms_norm_eps;
    at::Tensor x = at::embedding(embed_, ids);  // [T, H]
    const bool fused = cuda_ops::use_kernels(x);
    at::Tensor cos, sin;
    if (!fused || write == nullptr) std::tie(cos, sin) = rope_.cos_sin(positions, dtype_);  // [T, 1, hd] each
    at::Tensor pending;  // fused path: the last MLP output, added to x inside the next norm
    for (size_t l = 0; l < layers_.size(); ++l) {
      const Layer& L = layers_[l];
      at::Tensor h = fused ? cuda_ops::add_rms_norm_(x, pending, L.input_norm, eps) : model::rms_norm(x, L.input_norm, eps);
      const at::Tensor qkv = at::linear(h, L.qkv_w, L.qkv_b);  // [T, (nh + 2 nkv) * hd]
      const at::Tensor v = qkv.narrow(1, (nh + nkv) * hd, nkv * hd).view({T, nkv, hd});
      at::Tensor q, k;
      if (fused && write != nullptr) {
        std::tie(q, k) = cuda_ops::rope_write_kv(qkv, positions, write->slots, rope_.inv_freq(), write->kv->k[l],
                                                 write->kv->v[l], nh, nkv);
      } else {
        // q and k rotated together (elementwise, so identical to rotating each): fewer kernels.
        const at::Tensor qk = model::apply_rotary(qkv.narrow(1, 0, (nh + nkv) * hd).view({T, nh + nkv, hd}), cos, sin);
        q = qk.narrow(1, 0, nh);   // [T, nh, hd]
        k = qk.narrow(1, nh, nkv);  // [T, nkv, hd]
        if (write != nullptr) {
          write->kv->k[l].view({-1, nkv, hd}).index_copy_(0, write->slots, k);
          write->kv->v[l].view({-1, nkv, hd}).index_copy_(0, write->slots, v);
        }
      }
      const at::Tensor a = attn(static_cast<int64_t>(l), q, k, v);  // [T, nh, hd]
      const at::Tensor o = at::linear(a.reshape({T, nh * hd}), L.o_w, L.o_b);
      if (fused) {
        h = cuda_ops::add_rms_norm_(x, o, L.post_norm, eps);
      } else {
        x = x + o;
        h = model::rms_norm(x, L.post_norm, eps);
      }
      const at::Tensor gu = at::linear(h, L.gate_up_w);  // [T, 2I]
      at::Tensor mlp = at::linear(at::silu(gu.narrow(1, 0, I)) * gu.narrow(1, I, I), L.down_w);
      if (fused) {
        pending = std::move(mlp);
      } else {
        x = x + mlp;
      }
    }
    if (pending.defined()) x.add_(pending);
    return x;
  }

  /// hidden [R, H] -> logits [R, vocab] float32. Runs outside InferenceMode so that callers get
  /// ordinary tensors (in-place updates of inference tensors outside InferenceMode throw).
  at::Tensor lm_logits(const at::Tensor& x) const {
    return at::linear(model::rms_norm(x, final_norm_, cfg_.rms_norm_eps), lm_head_).to(at::kFloat);
  }

  ModelConfig cfg_;
  at::Device device_;
  at::ScalarType dtype_;
  model::RotaryEmbedding rope_;
  at::Tensor embed_, final_norm_, lm_head_;
  std::vector<Layer> layers_;
};

}  // namespace genprm
