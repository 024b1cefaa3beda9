#pragma once
// Device and dtype names as users write them ("cpu", "cuda:1", "bfloat16", "bf16", ...).
#include <string>

#include <ATen/ATen.h>

#include "genprm/util/error.hpp"

namespace genprm {

/// "float32" / "fp32" / "float", "bfloat16" / "bf16", "float16" / "fp16" / "half".
/// Throws ValueError naming the accepted spellings otherwise.
inline at::ScalarType parse_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32" || name == "float" || name == "torch.float32") return at::kFloat;
  if (name == "bfloat16" || name == "bf16" || name == "torch.bfloat16") return at::kBFloat16;
  if (name == "float16" || name == "fp16" || name == "half" || name == "torch.float16") return at::kHalf;
  throw ValueError(fmt::format(
      "dtype '{}' is not supported: use float32 (fp32), bfloat16 (bf16) or float16 (fp16)", name));
}

/// Canonical name of a compute dtype ("float32", "bfloat16", "float16").
inline std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    default: return std::string(c10::toString(t));
  }
}

/// "cpu", "cuda", "cuda:N". Throws ValueError for anything else, and for CUDA when this torch
/// has no usable CUDA device.
inline at::Device parse_device(const std::string& name) {
  at::Device dev(at::kCPU);
  try {
    dev = at::Device(name);
  } catch (const std::exception&) {
    throw ValueError(fmt::format("device '{}' is not valid: use 'cpu', 'cuda' or 'cuda:N'", name));
  }
  GENPRM_CHECK_ARG(dev.is_cpu() || dev.is_cuda(), "device '{}' is not supported: use 'cpu' or 'cuda[:N]'", name);
  if (dev.is_cuda()) {
    GENPRM_CHECK_ARG(at::hasCUDA(), "device '{}' requested but this torch build has no usable CUDA device", name);
  }
  return dev;
}

}  // namespace genprm
