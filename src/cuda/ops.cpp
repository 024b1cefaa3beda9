// Tensor-level entry points of the CUDA kernels (include/genprm/model/cuda_ops.hpp): shape,
// dtype and device checks, the current stream, and CUDA graph capture over ATen's CUDAGraph.
#include "genprm/model/cuda_ops.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "kernels.cuh"

namespace genprm::cuda_ops {
namespace {

namespace ck = genprm::cuda_kernels;

std::atomic<bool>& switch_state() {
  static std::atomic<bool> on{[] {
    const char* s = std::getenv("GENPRM_CUDA_KERNELS");
    return s == nullptr || std::strcmp(s, "0") != 0;
  }()};
  return on;
}

ck::DType kernel_dtype(at::ScalarType t, const char* op) {
  switch (t) {
    case at::kFloat: return ck::DType::Float32;
    case at::kBFloat16: return ck::DType::BFloat16;
    case at::kHalf: return ck::DType::Float16;
    default: TORCH_CHECK(false, op, ": dtype ", c10::toString(t), " is not supported (float32, bfloat16, float16)");
  }
}

void check_cuda(cudaError_t e, const char* op) {
  TORCH_CHECK(e == cudaSuccess, op, ": CUDA error: ", cudaGetErrorString(e));
}

void check_on(const at::Tensor& t, const at::Tensor& like, const char* op, const char* name) {
  TORCH_CHECK(t.defined() && t.is_cuda() && t.device() == like.device(), op, ": ", name, " must be on ",
              like.device().str());
  TORCH_CHECK(t.is_contiguous(), op, ": ", name, " must be contiguous");
}

}  // namespace

bool kernels_enabled() { return switch_state().load(); }
void set_kernels_enabled(bool on) { switch_state().store(on); }

bool paged_attention_supported(int64_t heads, int64_t kv_heads, int64_t head_dim, at::ScalarType dtype) {
  const bool dt = dtype == at::kFloat || dtype == at::kBFloat16 || dtype == at::kHalf;
  return dt && ck::paged_attention_supported(static_cast<int>(heads), static_cast<int>(kv_heads),
                                             static_cast<int>(head_dim));
}

int64_t attention_partition() { return ck::kPartition; }

at::Tensor paged_attention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                           const at::Tensor& block_tables, const at::Tensor& kv_len, const at::Tensor& row_seq,
                           double scale, int64_t splits) {
  const char* op = "paged_attention";
  check_on(q, q, op, "q");
  check_on(k_cache, q, op, "k_cache");
  check_on(v_cache, q, op, "v_cache");
  check_on(block_tables, q, op, "block_tables");
  check_on(kv_len, q, op, "kv_len");
  TORCH_CHECK(q.dim() == 3 && k_cache.dim() == 4 && v_cache.sizes() == k_cache.sizes(), op,
              ": q must be [R, heads, d] and the caches [blocks, block_size, kv_heads, d]");
  TORCH_CHECK(k_cache.size(3) == q.size(2), op, ": head_dim of q and cache differ");
  TORCH_CHECK(k_cache.scalar_type() == q.scalar_type() && v_cache.scalar_type() == q.scalar_type(), op,
              ": q and the caches must have one dtype");
  TORCH_CHECK(block_tables.dim() == 2 && block_tables.scalar_type() == at::kInt, op, ": block_tables must be int32 [S, W]");
  TORCH_CHECK(kv_len.dim() == 1 && kv_len.size(0) == q.size(0) && kv_len.scalar_type() == at::kInt, op,
              ": kv_len must be int32 [R]");
  if (row_seq.defined()) {
    check_on(row_seq, q, op, "row_seq");
    TORCH_CHECK(row_seq.dim() == 1 && row_seq.size(0) == q.size(0) && row_seq.scalar_type() == at::kInt, op,
                ": row_seq must be int32 [R]");
  } else {
    TORCH_CHECK(block_tables.size(0) >= q.size(0), op, ": block_tables has fewer rows than q");
  }
  TORCH_CHECK(paged_attention_supported(q.size(1), k_cache.size(2), q.size(2), q.scalar_type()), op,
              ": shape not supported (heads ", q.size(1), ", kv_heads ", k_cache.size(2), ", head_dim ", q.size(2), ")");
  TORCH_CHECK(splits >= 1, op, ": splits must be >= 1");
  const c10::cuda::CUDAGuard guard(q.device());
  at::Tensor out = at::empty_like(q);
  ck::PagedAttentionArgs a;
  a.q = q.data_ptr();
  a.k_cache = k_cache.data_ptr();
  a.v_cache = v_cache.data_ptr();
  a.out = out.data_ptr();
  a.block_tables = block_tables.data_ptr<int32_t>();
  a.kv_len = kv_len.data_ptr<int32_t>();
  a.row_seq = row_seq.defined() ? row_seq.data_ptr<int32_t>() : nullptr;
  a.rows = static_cast<int>(q.size(0));
  a.heads = static_cast<int>(q.size(1));
  a.kv_heads = static_cast<int>(k_cache.size(2));
  a.head_dim = static_cast<int>(q.size(2));
  a.block_size = static_cast<int>(k_cache.size(1));
  a.table_width = static_cast<int>(block_tables.size(1));
  a.splits = static_cast<int>(splits);
  a.scale = static_cast<float>(scale);
  a.dtype = kernel_dtype(q.scalar_type(), op);
  at::Tensor workspace;
  if (splits > 1) {
    workspace = at::empty({q.size(0) * q.size(1) * splits * (q.size(2) + 2)}, q.options().dtype(at::kFloat));
    a.workspace = workspace.data_ptr<float>();
  }
  check_cuda(ck::paged_attention(a, at::cuda::getCurrentCUDAStream()), op);
  return out;
}

at::Tensor add_rms_norm_(at::Tensor& residual, const at::Tensor& x, const at::Tensor& weight, double eps) {
  const char* op = "add_rms_norm";
  check_on(residual, residual, op, "residual");
  check_on(weight, residual, op, "weight");
  TORCH_CHECK(residual.dim() == 2 && weight.dim() == 1 && weight.size(0) == residual.size(1), op,
              ": residual must be [rows, hidden] and weight [hidden]");
  TORCH_CHECK(weight.scalar_type() == residual.scalar_type(), op, ": weight and residual must have one dtype");
  if (x.defined()) {
    check_on(x, residual, op, "x");
    TORCH_CHECK(x.sizes() == residual.sizes() && x.scalar_type() == residual.scalar_type(), op,
                ": x must match residual");
  }
  const c10::cuda::CUDAGuard guard(residual.device());
  at::Tensor out = at::empty_like(residual);
  ck::AddRmsNormArgs a;
  a.x = x.defined() ? x.data_ptr() : nullptr;
  a.residual = residual.data_ptr();
  a.weight = weight.data_ptr();
  a.out = out.data_ptr();
  a.rows = static_cast<int>(residual.size(0));
  a.hidden = static_cast<int>(residual.size(1));
  a.eps = static_cast<float>(eps);
  a.dtype = kernel_dtype(residual.scalar_type(), op);
  check_cuda(ck::add_rms_norm(a, at::cuda::getCurrentCUDAStream()), op);
  return out;
}

std::pair<at::Tensor, at::Tensor> rope_write_kv(const at::Tensor& qkv, const at::Tensor& positions,
                                                const at::Tensor& slots, const at::Tensor& inv_freq,
                                                at::Tensor& k_cache, at::Tensor& v_cache, int64_t heads,
                                                int64_t kv_heads) {
  const char* op = "rope_write_kv";
  check_on(qkv, qkv, op, "qkv");
  check_on(positions, qkv, op, "positions");
  check_on(slots, qkv, op, "slots");
  check_on(inv_freq, qkv, op, "inv_freq");
  check_on(k_cache, qkv, op, "k_cache");
  check_on(v_cache, qkv, op, "v_cache");
  TORCH_CHECK(k_cache.dim() == 4 && v_cache.sizes() == k_cache.sizes() && k_cache.size(2) == kv_heads, op,
              ": caches must be [blocks, block_size, kv_heads, d]");
  const int64_t T = qkv.size(0), d = k_cache.size(3);
  TORCH_CHECK(qkv.dim() == 2 && qkv.size(1) == (heads + 2 * kv_heads) * d, op, ": qkv must be [T, (heads + 2 kv_heads) * d]");
  TORCH_CHECK(positions.scalar_type() == at::kLong && slots.scalar_type() == at::kLong && positions.numel() == T &&
                  slots.numel() == T, op, ": positions and slots must be int64 [T]");
  TORCH_CHECK(inv_freq.scalar_type() == at::kFloat && inv_freq.numel() == d / 2, op, ": inv_freq must be float32 [d/2]");
  TORCH_CHECK(k_cache.scalar_type() == qkv.scalar_type() && v_cache.scalar_type() == qkv.scalar_type(), op,
              ": qkv and the caches must have one dtype");
  const c10::cuda::CUDAGuard guard(qkv.device());
  at::Tensor q = at::empty({T, heads, d}, qkv.options());
  at::Tensor k = at::empty({T, kv_heads, d}, qkv.options());
  ck::RopeKvArgs a;
  a.qkv = qkv.data_ptr();
  a.positions = positions.data_ptr<int64_t>();
  a.slots = slots.data_ptr<int64_t>();
  a.inv_freq = inv_freq.data_ptr<float>();
  a.q_out = q.data_ptr();
  a.k_out = k.data_ptr();
  a.k_cache = k_cache.data_ptr();
  a.v_cache = v_cache.data_ptr();
  a.tokens = static_cast<int>(T);
  a.heads = static_cast<int>(heads);
  a.kv_heads = static_cast<int>(kv_heads);
  a.head_dim = static_cast<int>(d);
  a.dtype = kernel_dtype(qkv.scalar_type(), op);
  check_cuda(ck::rope_write_kv(a, at::cuda::getCurrentCUDAStream()), op);
  return {q, k};
}

struct CudaGraph::Impl {
  at::cuda::CUDAGraph graph;
};

CudaGraph::CudaGraph() : impl_(std::make_unique<Impl>()) {}
CudaGraph::~CudaGraph() = default;

void CudaGraph::capture(const std::function<void()>& fn, at::Device device, int warmups, const CudaGraph* pool) {
  TORCH_CHECK(device.is_cuda(), "CudaGraph::capture: device ", device.str(), " is not a CUDA device");
  const c10::cuda::CUDAGuard guard(device);
  // Capture needs a stream other than the legacy default one; warm-up runs there first so that
  // lazily made state (cuBLAS handles and workspaces, allocator blocks) exists before capture.
  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, device.index());
  c10::cuda::getCurrentCUDAStream(device.index()).synchronize();  // inputs written before
  {
    const c10::cuda::CUDAStreamGuard sg(side);
    for (int i = 0; i < warmups; ++i) fn();
    side.synchronize();
    const c10::MempoolId_t id = pool != nullptr ? pool->impl_->graph.pool() : at::cuda::graph_pool_handle();
    impl_->graph.capture_begin(id);
    fn();
    impl_->graph.capture_end();
  }
  side.synchronize();
}

void CudaGraph::replay() { impl_->graph.replay(); }

size_t reserved_bytes(at::Device device) {
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
  return static_cast<size_t>(stats.reserved_bytes[0].current);
}

}  // namespace genprm::cuda_ops
