#pragma once
// The model's CUDA fast paths: paged attention that reads K/V blocks in place, residual add +
// RMSNorm, rotary embedding + K/V write, and CUDA graph capture. They are the compiled part
// src/cuda (CMake -DGENPRM_CUDA=ON defines GENPRM_WITH_CUDA); without it every function here is
// an inline stub and `use_kernels` is false, so the callers need no #ifdef. One switch turns the
// kernels off at run time: GENPRM_CUDA_KERNELS=0 (or set_kernels_enabled(false)); the ATen path of
// model/ is then used, as on the CPU. tests/cpp/cuda compares each kernel with that path.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <utility>

#include <ATen/ATen.h>

namespace genprm::cuda_ops {

#ifdef GENPRM_WITH_CUDA
constexpr bool kCompiledIn = true;
/// The run-time switch (initially: GENPRM_CUDA_KERNELS is unset or not "0").
bool kernels_enabled();
void set_kernels_enabled(bool on);

/// Whether paged_attention handles this shape and dtype.
bool paged_attention_supported(int64_t heads, int64_t kv_heads, int64_t head_dim, at::ScalarType dtype);

/// Keys per split-KV partition (a row with a longer context is split).
int64_t attention_partition();

/// Attention of q [R, heads, d] over the paged cache k_cache/v_cache [blocks, block_size,
/// kv_heads, d], in place: row r uses block-table row row_seq[r] (r when row_seq is undefined) of
/// block_tables [S, W] int32 and attends to its first kv_len[r] keys (int32 [R]). `splits`
/// partitions of attention_partition() keys each must cover the longest kv_len (fixed, so that a
/// captured graph does not depend on the lengths). -> [R, heads, d].
at::Tensor paged_attention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                           const at::Tensor& block_tables, const at::Tensor& kv_len, const at::Tensor& row_seq,
                           double scale, int64_t splits);

/// residual += x (x may be undefined: no add), returns weight * rms_norm(residual). [rows, hidden].
at::Tensor add_rms_norm_(at::Tensor& residual, const at::Tensor& x, const at::Tensor& weight, double eps);

/// qkv [T, (heads + 2 kv_heads) * d]: rotates q and k by `positions` [T] int64 (inv_freq [d/2]
/// float32) and writes the rotated k and v into k_cache/v_cache [blocks, block_size, kv_heads, d]
/// at `slots` [T] int64. Returns (q [T, heads, d], k [T, kv_heads, d]).
std::pair<at::Tensor, at::Tensor> rope_write_kv(const at::Tensor& qkv, const at::Tensor& positions,
                                                const at::Tensor& slots, const at::Tensor& inv_freq,
                                                at::Tensor& k_cache, at::Tensor& v_cache, int64_t heads,
                                                int64_t kv_heads);

/// One captured CUDA graph. Graphs made with the same `pool` share their memory (capture the
/// largest first).
class CudaGraph {
 public:
  CudaGraph();
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;
  /// Runs `fn` `warmups` times on a side stream, then captures one run of it. `pool` shares the
  /// memory of an earlier graph (nullptr: a new pool).
  void capture(const std::function<void()>& fn, at::Device device, int warmups, const CudaGraph* pool);
  void replay();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Bytes the caching allocator holds on `device` (reserved), to log what capture costs.
size_t reserved_bytes(at::Device device);
#else
constexpr bool kCompiledIn = false;
inline bool kernels_enabled() { return false; }
inline void set_kernels_enabled(bool) {}
[[noreturn]] inline void not_compiled() {
  throw std::logic_error("genprm was built without its CUDA kernels (configure with -DGENPRM_CUDA=ON)");
}
inline bool paged_attention_supported(int64_t, int64_t, int64_t, at::ScalarType) { return false; }
inline int64_t attention_partition() { return 256; }
inline at::Tensor paged_attention(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                  const at::Tensor&, const at::Tensor&, double, int64_t) {
  not_compiled();
}
inline at::Tensor add_rms_norm_(at::Tensor&, const at::Tensor&, const at::Tensor&, double) { not_compiled(); }
inline std::pair<at::Tensor, at::Tensor> rope_write_kv(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                       const at::Tensor&, at::Tensor&, at::Tensor&, int64_t,
                                                       int64_t) {
  not_compiled();
}
class CudaGraph {
 public:
  void capture(const std::function<void()>&, at::Device, int, const CudaGraph*) { not_compiled(); }
  void replay() { not_compiled(); }
};
inline size_t reserved_bytes(at::Device) { return 0; }
#endif

/// The fast path applies: compiled in, switched on, and `t` lives on a CUDA device.
inline bool use_kernels(const at::Tensor& t) { return kCompiledIn && t.is_cuda() && kernels_enabled(); }

/// Splits that cover `max_keys` keys.
inline int64_t splits_for(int64_t max_keys) {
  const int64_t p = attention_partition();
  return std::max<int64_t>(1, (max_keys + p - 1) / p);
}

}  // namespace genprm::cuda_ops
