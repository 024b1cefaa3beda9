#pragma once
// safetensors <-> ATen tensors (links torch).
//
// to_tensor() is zero-copy when the mapped data is aligned for its dtype: the tensor aliases the
// private (copy-on-write) mapping and holds it alive. Writing into it in place is safe: the page
// is copied for this process and the file never changes.
#include <ATen/ATen.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "genprm/io/safetensors.hpp"

namespace genprm {

inline at::ScalarType to_scalar_type(DType d) {
  switch (d) {
    case DType::F64: return at::kDouble;
    case DType::F32: return at::kFloat;
    case DType::F16: return at::kHalf;
    case DType::BF16: return at::kBFloat16;
    case DType::I64: return at::kLong;
    case DType::I32: return at::kInt;
    case DType::I16: return at::kShort;
    case DType::I8: return at::kChar;
    case DType::U8: return at::kByte;
    case DType::BOOL: return at::kBool;
  }
  throw Error("to_scalar_type: unknown DType");
}

/// Throws ValueError naming `what` for a scalar type safetensors cannot hold here.
inline DType to_dtype(at::ScalarType s, const std::string& what) {
  switch (s) {
    case at::kDouble: return DType::F64;
    case at::kFloat: return DType::F32;
    case at::kHalf: return DType::F16;
    case at::kBFloat16: return DType::BF16;
    case at::kLong: return DType::I64;
    case at::kInt: return DType::I32;
    case at::kShort: return DType::I16;
    case at::kChar: return DType::I8;
    case at::kByte: return DType::U8;
    case at::kBool: return DType::BOOL;
    default: break;
  }
  throw ValueError(fmt::format("{}: unsupported tensor dtype {}", what, c10::toString(s)));
}

/// A CPU tensor over the tensor's bytes. Zero-copy (from_blob; the deleter holds `keep_alive`)
/// when `info.data` is aligned for the dtype, else a copy. Writes never reach the file.
inline at::Tensor to_tensor(const TensorInfo& info, std::shared_ptr<const void> keep_alive) {
  auto opts = at::TensorOptions().dtype(to_scalar_type(info.dtype)).device(at::kCPU);
  const auto addr = reinterpret_cast<std::uintptr_t>(info.data);
  if (info.nbytes == 0 || addr % dtype_size(info.dtype) != 0 || !keep_alive) {
    at::Tensor t = at::empty(info.shape, opts);
    if (info.nbytes) std::memcpy(t.data_ptr(), info.data, info.nbytes);
    return t;
  }
  return at::from_blob(const_cast<uint8_t*>(info.data), info.shape,
                       [keep = std::move(keep_alive)](void*) mutable { keep.reset(); }, opts);
}

/// Tensor `name` of a checkpoint (zero-copy where aligned).
inline at::Tensor to_tensor(const SafetensorsCheckpoint& ckpt, const std::string& name) {
  return to_tensor(ckpt.at(name), ckpt.keep_alive(name));
}

/// Every tensor of a checkpoint, by name.
inline std::map<std::string, at::Tensor> load_tensors(const SafetensorsCheckpoint& ckpt) {
  std::map<std::string, at::Tensor> out;
  for (const std::string& n : ckpt.names()) out.emplace(n, to_tensor(ckpt, n));
  return out;
}

/// Copies a tensor (any device, any strides) into a HostTensor.
inline HostTensor to_host_tensor(const at::Tensor& t, const std::string& what) {
  HostTensor h;
  h.dtype = to_dtype(t.scalar_type(), what);
  h.shape.assign(t.sizes().begin(), t.sizes().end());
  at::Tensor c = t.detach().to(at::kCPU).contiguous();
  h.bytes.resize(static_cast<size_t>(c.numel()) * c.element_size());
  if (!h.bytes.empty()) std::memcpy(h.bytes.data(), c.data_ptr(), h.bytes.size());
  return h;
}

/// Writes `tensors` (in name order) to one safetensors file.
inline void save_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  std::vector<std::pair<std::string, HostTensor>> host;
  host.reserve(tensors.size());
  for (const auto& [name, t] : tensors)
    host.emplace_back(name, to_host_tensor(t, fmt::format("{}: tensor '{}'", path, name)));
  write_safetensors(path, host, metadata);
}

}  // namespace genprm
