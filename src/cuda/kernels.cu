// genprm's CUDA kernels: paged attention reading the K/V blocks in place (split-KV for long
// contexts), residual add + RMSNorm, and rotary embedding + K/V cache write. Each computes what
// the ATen path of include/genprm/model computes, in the same order of roundings where the
// dtype rounds (tests/cpp/cuda compares them with it).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <cmath>

#include "kernels.cuh"

namespace genprm::cuda_kernels {
namespace {

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
/// x rounded to T and back: what an ATen op in dtype T stores.
template <typename T>
__device__ __forceinline__ float round_to(float x) { return to_float(from_float<T>(x)); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;

// One CTA: one query row, one KV head (its group of query heads), one partition of kPartition
// keys. Scores: a warp per key, each lane holding ELEMS = head_dim / 32 elements of it. Values:
// the threads split head_dim (Dc = min(D, 128) columns, EPT columns each) and TL lanes of keys.
template <typename T, int D>
__global__ void __launch_bounds__(kThreads) paged_attention_kernel(PagedAttentionArgs a) {
  constexpr int ELEMS = (D + 31) / 32;  // D = 16: lanes 16-31 hold nothing
  constexpr int Dc = D < kThreads ? D : kThreads;
  constexpr int EPT = D / Dc;
  constexpr int TL = kThreads / Dc;
  extern __shared__ float smem[];
  const int G = a.heads / a.kv_heads;
  float* q_s = smem;                            // [G, D], pre-scaled
  float* scores = q_s + G * D;                  // [G, kPartition]: scores, then probabilities
  float* m_s = scores + G * kPartition;         // [G]
  float* l_s = m_s + G;                         // [G]

  const int r = blockIdx.x, kvh = blockIdx.y, split = blockIdx.z;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int len = a.kv_len[r];
  const int seq = a.row_seq != nullptr ? a.row_seq[r] : r;
  const int start = split * kPartition;
  const int n = max(min(start + kPartition, len) - start, 0);
  const int head0 = kvh * G;
  const T* q = static_cast<const T*>(a.q) + (static_cast<int64_t>(r) * a.heads + head0) * D;
  const T* kc = static_cast<const T*>(a.k_cache);
  const T* vc = static_cast<const T*>(a.v_cache);
  const int32_t* table = a.block_tables + static_cast<int64_t>(seq) * a.table_width;
  const int64_t token_stride = static_cast<int64_t>(a.kv_heads) * D;

  for (int i = tid; i < G * D; i += kThreads) q_s[i] = to_float(q[i]) * a.scale;
  __syncthreads();

  for (int t = warp; t < n; t += kWarps) {
    const int pos = start + t;
    const int64_t slot = static_cast<int64_t>(table[pos / a.block_size]) * a.block_size + pos % a.block_size;
    const bool lane_ok = lane * ELEMS < D;
    const T* kp = kc + slot * token_stride + static_cast<int64_t>(kvh) * D + lane * ELEMS;
    float kf[ELEMS];
#pragma unroll
    for (int e = 0; e < ELEMS; ++e) kf[e] = lane_ok ? to_float(kp[e]) : 0.f;
    for (int g = 0; g < G; ++g) {
      const float* qg = q_s + g * D + lane * ELEMS;
      float dot = 0.f;
      if (lane_ok) {
#pragma unroll
        for (int e = 0; e < ELEMS; ++e) dot += kf[e] * qg[e];
      }
      dot = warp_sum(dot);
      if (lane == 0) scores[g * kPartition + t] = dot;
    }
  }
  __syncthreads();

  for (int g = warp; g < G; g += kWarps) {
    float* sg = scores + g * kPartition;
    float m = -FLT_MAX;
    for (int t = lane; t < n; t += 32) m = fmaxf(m, sg[t]);
    m = warp_max(m);
    float l = 0.f;
    for (int t = lane; t < n; t += 32) {
      const float p = expf(sg[t] - m);
      sg[t] = p;
      l += p;
    }
    l = warp_sum(l);
    if (lane == 0) {
      m_s[g] = n > 0 ? m : -FLT_MAX;
      l_s[g] = l;
    }
  }
  __syncthreads();

  const int d0 = tid % Dc, tl = tid / Dc;
  float acc[kMaxGroup][EPT];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g)
#pragma unroll
    for (int e = 0; e < EPT; ++e) acc[g][e] = 0.f;
  for (int t = tl; t < n; t += TL) {
    const int pos = start + t;
    const int64_t slot = static_cast<int64_t>(table[pos / a.block_size]) * a.block_size + pos % a.block_size;
    const T* vp = vc + slot * token_stride + static_cast<int64_t>(kvh) * D + d0;
    float vv[EPT];
#pragma unroll
    for (int e = 0; e < EPT; ++e) vv[e] = to_float(vp[e * Dc]);
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g < G) {
        const float p = scores[g * kPartition + t];
#pragma unroll
        for (int e = 0; e < EPT; ++e) acc[g][e] += p * vv[e];
      }
    }
  }
  __syncthreads();  // the probabilities are read: reuse their space for the lanes' sums
  float* red = scores;  // [TL, G, D] <= G * kPartition floats (TL * D <= 2 * kThreads)
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g)
    if (g < G)
#pragma unroll
      for (int e = 0; e < EPT; ++e) red[(tl * G + g) * D + d0 + e * Dc] = acc[g][e];
  __syncthreads();

  for (int i = tid; i < G * D; i += kThreads) {
    float v = 0.f;
    for (int k = 0; k < TL; ++k) v += red[k * G * D + i];
    const int g = i / D, d = i % D;
    const float l = l_s[g];
    const float o = l > 0.f ? v / l : 0.f;
    const int64_t h = static_cast<int64_t>(r) * a.heads + head0 + g;
    if (a.splits == 1) {
      static_cast<T*>(a.out)[h * D + d] = from_float<T>(o);
    } else {
      a.workspace[(h * a.splits + split) * D + d] = o;
      if (d == 0) {
        float* ml = a.workspace + static_cast<int64_t>(a.rows) * a.heads * a.splits * D;
        ml[(h * a.splits + split) * 2] = m_s[g];
        ml[(h * a.splits + split) * 2 + 1] = l;
      }
    }
  }
}

// Merges the partitions of one (row, head): softmax-weighted by each partition's max and sum.
template <typename T>
__global__ void combine_splits_kernel(PagedAttentionArgs a) {
  const int64_t h = static_cast<int64_t>(blockIdx.x) * a.heads + blockIdx.y;
  const int D = a.head_dim, S = a.splits;
  const float* o_part = a.workspace;
  const float* ml = a.workspace + static_cast<int64_t>(a.rows) * a.heads * S * D;
  float m = -FLT_MAX;
  for (int s = 0; s < S; ++s)
    if (ml[(h * S + s) * 2 + 1] > 0.f) m = fmaxf(m, ml[(h * S + s) * 2]);
  float l = 0.f;
  for (int s = 0; s < S; ++s) {
    const float ls = ml[(h * S + s) * 2 + 1];
    if (ls > 0.f) l += ls * expf(ml[(h * S + s) * 2] - m);
  }
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float v = 0.f;
    for (int s = 0; s < S; ++s) {
      const float ls = ml[(h * S + s) * 2 + 1];
      if (ls > 0.f) v += o_part[(h * S + s) * D + d] * ls * expf(ml[(h * S + s) * 2] - m);
    }
    static_cast<T*>(a.out)[h * D + d] = from_float<T>(l > 0.f ? v / l : 0.f);
  }
}

template <typename T, int D>
cudaError_t launch_paged(const PagedAttentionArgs& a, cudaStream_t stream) {
  const int G = a.heads / a.kv_heads;
  const size_t smem = sizeof(float) * (static_cast<size_t>(G) * (D + kPartition) + 2 * G);
  dim3 grid(a.rows, a.kv_heads, a.splits);
  paged_attention_kernel<T, D><<<grid, kThreads, smem, stream>>>(a);
  if (a.splits > 1) {
    combine_splits_kernel<T><<<dim3(a.rows, a.heads), a.head_dim < 128 ? a.head_dim : 128, 0, stream>>>(a);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t paged_for_dim(const PagedAttentionArgs& a, cudaStream_t stream) {
  switch (a.head_dim) {
    case 16: return launch_paged<T, 16>(a, stream);
    case 32: return launch_paged<T, 32>(a, stream);
    case 64: return launch_paged<T, 64>(a, stream);
    case 128: return launch_paged<T, 128>(a, stream);
    case 256: return launch_paged<T, 256>(a, stream);
    default: return cudaErrorInvalidValue;
  }
}

template <typename T>
__device__ float block_sum(float v, float* red) {
  v = warp_sum(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = (blockDim.x + 31) / 32;
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < warps; ++w) total += red[w];
  return total;
}

template <typename T>
__global__ void add_rms_norm_kernel(AddRmsNormArgs a) {
  __shared__ float red[32];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * a.hidden;
  T* res = static_cast<T*>(a.residual) + base;
  const T* x = a.x != nullptr ? static_cast<const T*>(a.x) + base : nullptr;
  float ss = 0.f;
  for (int i = threadIdx.x; i < a.hidden; i += blockDim.x) {
    float v = to_float(res[i]);
    if (x != nullptr) {
      v = round_to<T>(v + to_float(x[i]));
      res[i] = from_float<T>(v);
    }
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum<T>(ss, red) / static_cast<float>(a.hidden) + a.eps);
  const T* w = static_cast<const T*>(a.weight);
  T* out = static_cast<T*>(a.out) + base;
  for (int i = threadIdx.x; i < a.hidden; i += blockDim.x) {
    const float normed = round_to<T>(to_float(res[i]) * inv);
    out[i] = from_float<T>(to_float(w[i]) * normed);
  }
}

template <typename T>
__global__ void rope_write_kv_kernel(RopeKvArgs a) {
  const int t = blockIdx.x;
  const int D = a.head_dim, half = D / 2;
  const int nh = a.heads, nkv = a.kv_heads;
  const T* row = static_cast<const T*>(a.qkv) + static_cast<int64_t>(t) * (nh + 2 * nkv) * D;
  const float pos = static_cast<float>(a.positions[t]);
  const int64_t slot = a.slots[t];
  T* kc = static_cast<T*>(a.k_cache) + slot * nkv * D;
  T* vc = static_cast<T*>(a.v_cache) + slot * nkv * D;
  for (int i = threadIdx.x; i < (nh + nkv) * half; i += blockDim.x) {
    const int head = i / half, j = i % half;
    const float angle = pos * a.inv_freq[j];
    const float c = round_to<T>(cosf(angle)), s = round_to<T>(sinf(angle));
    const float x1 = to_float(row[head * D + j]), x2 = to_float(row[head * D + j + half]);
    const T o1 = from_float<T>(round_to<T>(x1 * c) + round_to<T>(-x2 * s));
    const T o2 = from_float<T>(round_to<T>(x2 * c) + round_to<T>(x1 * s));
    if (head < nh) {
      T* q = static_cast<T*>(a.q_out) + (static_cast<int64_t>(t) * nh + head) * D;
      q[j] = o1;
      q[j + half] = o2;
    } else {
      const int kh = head - nh;
      T* k = static_cast<T*>(a.k_out) + (static_cast<int64_t>(t) * nkv + kh) * D;
      k[j] = o1;
      k[j + half] = o2;
      kc[kh * D + j] = o1;
      kc[kh * D + j + half] = o2;
    }
  }
  const T* v = row + (nh + nkv) * D;
  for (int i = threadIdx.x; i < nkv * D; i += blockDim.x) vc[i] = v[i];
}

template <template <typename> class Launch, typename Args>
cudaError_t by_dtype(const Args& a, cudaStream_t stream) {
  switch (a.dtype) {
    case DType::Float32: return Launch<float>::run(a, stream);
    case DType::BFloat16: return Launch<__nv_bfloat16>::run(a, stream);
    case DType::Float16: return Launch<__half>::run(a, stream);
  }
  return cudaErrorInvalidValue;
}

template <typename T>
struct PagedLaunch {
  static cudaError_t run(const PagedAttentionArgs& a, cudaStream_t s) { return paged_for_dim<T>(a, s); }
};
template <typename T>
struct NormLaunch {
  static cudaError_t run(const AddRmsNormArgs& a, cudaStream_t s) {
    const int threads = a.hidden >= 1024 ? 1024 : ((a.hidden + 31) / 32) * 32;
    add_rms_norm_kernel<T><<<a.rows, threads, 0, s>>>(a);
    return cudaGetLastError();
  }
};
template <typename T>
struct RopeLaunch {
  static cudaError_t run(const RopeKvArgs& a, cudaStream_t s) {
    rope_write_kv_kernel<T><<<a.tokens, 128, 0, s>>>(a);
    return cudaGetLastError();
  }
};

}  // namespace

bool paged_attention_supported(int heads, int kv_heads, int head_dim) {
  const bool dim_ok = head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128 || head_dim == 256;
  return dim_ok && kv_heads > 0 && heads % kv_heads == 0 && heads / kv_heads <= kMaxGroup;
}

cudaError_t paged_attention(const PagedAttentionArgs& a, cudaStream_t stream) {
  if (a.rows == 0) return cudaSuccess;
  if (!paged_attention_supported(a.heads, a.kv_heads, a.head_dim) || a.splits < 1) return cudaErrorInvalidValue;
  return by_dtype<PagedLaunch>(a, stream);
}

cudaError_t add_rms_norm(const AddRmsNormArgs& a, cudaStream_t stream) {
  if (a.rows == 0) return cudaSuccess;
  return by_dtype<NormLaunch>(a, stream);
}

cudaError_t rope_write_kv(const RopeKvArgs& a, cudaStream_t stream) {
  if (a.tokens == 0) return cudaSuccess;
  if (a.head_dim % 2 != 0) return cudaErrorInvalidValue;
  return by_dtype<RopeLaunch>(a, stream);
}

}  // namespace genprm::cuda_kernels
