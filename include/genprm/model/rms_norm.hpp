#pragma once
// RMSNorm as Hugging Face's Qwen2RMSNorm computes it: statistics in float32, the normalised
// value cast back to the input dtype, then scaled by the weight (in the input dtype).
#include <ATen/ATen.h>

namespace genprm::model {

/// x: [..., hidden] (float32 / bfloat16 / float16), weight: [hidden] in x's dtype -> x's shape.
inline at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const at::Tensor xf = x.to(at::kFloat);                 // no copy when already float32
  const at::Tensor var = xf.pow(2).mean({-1}, /*keepdim=*/true);  // [..., 1]
  return weight * (xf * at::rsqrt(var + eps)).to(x.scalar_type());
}

}  // namespace genprm::model
