#pragma once
// Rotary position embedding exactly as Hugging Face's Qwen2RotaryEmbedding ("default" type):
//   inv_freq = 1 / theta^(arange(0, d, 2) / d)            (float32, computed on the CPU)
//   freqs    = position (float32) * inv_freq;  emb = cat(freqs, freqs)
//   cos, sin = cos(emb), sin(emb) cast to the compute dtype
//   x'       = x * cos + rotate_half(x) * sin,  rotate_half(x) = cat(-x[d/2:], x[:d/2])
#include <cstdint>
#include <utility>

#include <ATen/ATen.h>

#include "genprm/util/error.hpp"

namespace genprm::model {

class RotaryEmbedding {
 public:
  RotaryEmbedding() = default;
  RotaryEmbedding(int64_t head_dim, double theta, at::Device device) : head_dim_(head_dim) {
    GENPRM_CHECK_ARG(head_dim > 0 && head_dim % 2 == 0, "rotary embedding: head_dim {} must be even and > 0",
                     head_dim);
    GENPRM_CHECK_ARG(theta > 0, "rotary embedding: rope_theta {} must be > 0", theta);
    // Same operations and order as HF: arange in float32, divided by d, theta ** that, 1 / that.
    const at::Tensor exponents = at::arange(0, head_dim, 2, at::TensorOptions().dtype(at::kFloat)) / head_dim;
    inv_freq_ = at::reciprocal(at::pow(at::Scalar(theta), exponents)).to(device);  // [d/2] float32
  }

  int64_t head_dim() const { return head_dim_; }
  const at::Tensor& inv_freq() const { return inv_freq_; }

  /// positions: [T] int64 on the model's device -> (cos, sin), each [T, 1, head_dim] in `dtype`,
  /// broadcastable over [T, heads, head_dim].
  std::pair<at::Tensor, at::Tensor> cos_sin(const at::Tensor& positions, at::ScalarType dtype) const {
    const at::Tensor freqs = positions.to(at::kFloat).unsqueeze(1) * inv_freq_.unsqueeze(0);  // [T, d/2]
    const at::Tensor emb = at::cat({freqs, freqs}, -1).unsqueeze(1);                         // [T, 1, d]
    return {emb.cos().to(dtype), emb.sin().to(dtype)};
  }

 private:
  int64_t head_dim_ = 0;
  at::Tensor inv_freq_;
};

/// x: [T, heads, d]; cos, sin: [T, 1, d] in x's dtype -> [T, heads, d].
inline at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  const at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

}  // namespace genprm::model
