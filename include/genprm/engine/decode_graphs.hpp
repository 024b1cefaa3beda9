#pragma once
// Decode steps over static buffers, captured as CUDA graphs per batch-size bucket.
//
// A decode-only step (one new token per sequence) whose batch fits a bucket (1, 2, 4, ... up to
// EngineOptions::graph_max_batch) and whose sequences fit the table width (graph_max_context
// tokens) runs over that bucket's fixed device tensors (DecodeInputs): the engine's host vectors
// are packed into one host buffer and copied in ONE transfer; rows past the batch are padding
// (token 0 at position 0, written to a scratch block the engine keeps out of the pool, context 1).
// On CUDA, every bucket's forward is captured once, at engine start, largest first into one
// shared memory pool, and a step is a single graph replay instead of ~30 kernel launches per
// layer. Mode `static` runs the same forward eagerly over the same buffers on any device: the
// tested fallback, and how the CPU tests exercise this path. Mixed prefill + decode steps and
// steps that fit no bucket run eagerly through Model::forward.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#include "genprm/model/cuda_ops.hpp"
#include "genprm/model/forward_batch.hpp"
#include "genprm/util/error.hpp"
#include "genprm/util/log.hpp"

namespace genprm {

enum class DecodeGraphMode {
  Auto,    ///< CUDA graphs on a CUDA device when genprm is built with its CUDA kernels; else off
  Off,     ///< every step through Model::forward
  Static,  ///< static buffers without capture, any device (the fallback; CPU tests)
};
inline const char* enum_name(DecodeGraphMode m) {
  switch (m) {
    case DecodeGraphMode::Auto: return "auto";
    case DecodeGraphMode::Off: return "off";
    case DecodeGraphMode::Static: return "static";
  }
  return "?";
}
inline DecodeGraphMode parse_enum(const std::string& s, DecodeGraphMode*) {
  if (s == "auto") return DecodeGraphMode::Auto;
  if (s == "off") return DecodeGraphMode::Off;
  if (s == "static") return DecodeGraphMode::Static;
  throw ValueError(fmt::format("decode_graphs '{}' is not valid: use auto, off or static", s));
}

/// What the decode graphs cost and did (part of EngineStats).
struct DecodeGraphReport {
  int64_t buckets = 0;          ///< batch sizes with static buffers (captured on CUDA)
  bool captured = false;        ///< CUDA graphs (else static buffers run eagerly, or off)
  double capture_seconds = 0.0;
  int64_t capture_bytes = 0;    ///< device memory the capture reserved
};

template <class Model, class = void>
struct has_forward_decode : std::false_type {};
template <class Model>
struct has_forward_decode<Model, std::void_t<decltype(std::declval<const Model&>().forward_decode(
                                     std::declval<const DecodeInputs&>(), std::declval<KvCacheView&>()))>>
    : std::true_type {};

template <class Model>
class DecodeGraphs {
 public:
  struct Config {
    DecodeGraphMode mode = DecodeGraphMode::Auto;
    int64_t max_batch = 256;
    int64_t max_context = 8192;
    int64_t block_size = 16;
    int32_t scratch_block = -1;  ///< a KV block no sequence uses
  };

  /// Whether `mode` gives static buffers for this model (Off, or a model without
  /// forward_decode, gives none).
  static bool wanted(const Model& model, DecodeGraphMode mode) {
    if constexpr (!has_forward_decode<Model>::value) {
      return false;
    } else {
      if (mode == DecodeGraphMode::Static) return true;
      return mode == DecodeGraphMode::Auto && cuda_ops::kCompiledIn && model.device().is_cuda() &&
             cuda_ops::kernels_enabled();
    }
  }

  DecodeGraphs() = default;

  /// Makes the buckets' buffers; on CUDA (mode Auto) captures each bucket's forward.
  DecodeGraphs(const Model& model, KvCacheView& kv, const Config& cfg) : model_(&model), kv_(&kv), cfg_(cfg) {
    if (!wanted(model, cfg.mode)) return;
    GENPRM_CHECK_ARG(cfg.max_batch >= 1, "EngineOptions.graph_max_batch must be >= 1, got {}", cfg.max_batch);
    GENPRM_CHECK_ARG(cfg.max_context >= 1, "EngineOptions.graph_max_context must be >= 1, got {}", cfg.max_context);
    GENPRM_CHECK(cfg.scratch_block >= 0, "DecodeGraphs: no scratch block");
    width_ = (cfg.max_context + cfg.block_size - 1) / cfg.block_size;
    const at::Device dev = model.device();
    const bool capture = cfg.mode == DecodeGraphMode::Auto && dev.is_cuda();
    std::vector<int64_t> sizes;
    for (int64_t b = 1; b < cfg.max_batch; b *= 2) sizes.push_back(b);
    sizes.push_back(cfg.max_batch);
    const auto t0 = std::chrono::steady_clock::now();
    const size_t mem0 = capture ? cuda_ops::reserved_bytes(dev) : 0;
    for (auto it = sizes.rbegin(); it != sizes.rend(); ++it) {  // largest first: one pool for all
      auto b = std::make_unique<Bucket>();
      b->rows = *it;
      const int64_t n = 4 * b->rows + b->rows * width_;
      const auto i32 = at::TensorOptions().dtype(at::kInt);
      b->host = at::empty({n}, i32.pinned_memory(dev.is_cuda()));
      b->device = at::empty({n}, i32.device(dev));
      b->in.token_ids = b->device.narrow(0, 0, b->rows);
      b->in.positions = b->device.narrow(0, b->rows, b->rows);
      b->in.slot_mapping = b->device.narrow(0, 2 * b->rows, b->rows);
      b->in.context_lens = b->device.narrow(0, 3 * b->rows, b->rows);
      b->in.block_tables = b->device.narrow(0, 4 * b->rows, b->rows * width_).view({b->rows, width_});
      fill_padding(*b, 0);
      b->device.copy_(b->host);
      if (capture) {
        b->graph = std::make_unique<cuda_ops::CudaGraph>();
        const cuda_ops::CudaGraph* pool = buckets_.empty() ? nullptr : buckets_.front()->graph.get();
        Bucket* bp = b.get();
        b->graph->capture([this, bp] { bp->logits = model_->forward_decode(bp->in, *kv_); }, dev, 1, pool);
      }
      buckets_.insert(buckets_.begin(), std::move(b));  // kept smallest first
    }
    report_.buckets = static_cast<int64_t>(buckets_.size());
    report_.captured = capture;
    report_.capture_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (capture) report_.capture_bytes = static_cast<int64_t>(cuda_ops::reserved_bytes(dev) - mem0);
    log(LogLevel::Info, "decode graphs: {} buckets up to batch {}, context <= {} tokens, {} in {:.2f} s, {:.1f} MiB",
        report_.buckets, cfg.max_batch, width_ * cfg.block_size, capture ? "captured" : "static buffers",
        report_.capture_seconds, static_cast<double>(report_.capture_bytes) / (1 << 20));
  }

  bool enabled() const { return !buckets_.empty(); }
  const DecodeGraphReport& report() const { return report_; }

  /// Whether a decode-only step of `rows` sequences, `table_width` blocks at most, fits a bucket.
  bool fits(size_t rows, size_t table_width) const { return bucket_for(rows, table_width) != nullptr; }

  /// Logits [rows, vocab] of a decode-only step that fits (see fits()).
  /// tok/pos/slot/ctx: one entry per row; table: rows x table_width block ids, row-major.
  at::Tensor run(const std::vector<int64_t>& tok, const std::vector<int64_t>& pos, const std::vector<int64_t>& slot,
                 const std::vector<int64_t>& ctx, const std::vector<int64_t>& table, size_t table_width) {
    const int64_t rows = static_cast<int64_t>(tok.size());
    Bucket* b = bucket_for(tok.size(), table_width);
    GENPRM_CHECK(b != nullptr, "DecodeGraphs::run: a step of {} rows and {} blocks fits no bucket", rows, table_width);
    int32_t* h = b->host.template data_ptr<int32_t>();
    const int64_t B = b->rows;
    for (int64_t i = 0; i < rows; ++i) {
      h[i] = static_cast<int32_t>(tok[i]);
      h[B + i] = static_cast<int32_t>(pos[i]);
      h[2 * B + i] = static_cast<int32_t>(slot[i]);
      h[3 * B + i] = static_cast<int32_t>(ctx[i]);
      int32_t* t = h + 4 * B + i * width_;
      for (size_t j = 0; j < table_width; ++j) t[j] = static_cast<int32_t>(table[i * table_width + j]);
      std::fill(t + table_width, t + width_, cfg_.scratch_block);
    }
    fill_padding(*b, rows);
    b->device.copy_(b->host, /*non_blocking=*/true);
    if (b->graph) {
      b->graph->replay();
      return b->logits.narrow(0, 0, rows);
    }
    return model_->forward_decode(b->in, *kv_).narrow(0, 0, rows);
  }

 private:
  struct Bucket {
    int64_t rows = 0;
    at::Tensor host, device;  // [4 rows + rows * width] int32: tokens, positions, slots, contexts, tables
    DecodeInputs in;          // views of `device`
    at::Tensor logits;        // the captured forward's output (CUDA)
    std::unique_ptr<cuda_ops::CudaGraph> graph;
  };

  // The smallest bucket that holds `rows` sequences of `table_width` blocks, or null.
  Bucket* bucket_for(size_t rows, size_t table_width) const {
    if (rows < 1 || static_cast<int64_t>(table_width) > width_) return nullptr;
    for (const auto& c : buckets_)
      if (c->rows >= static_cast<int64_t>(rows)) return c.get();
    return nullptr;
  }

  // Rows [from, rows) of the host buffer: token 0 at position 0 into the scratch block.
  void fill_padding(Bucket& b, int64_t from) const {
    int32_t* h = b.host.template data_ptr<int32_t>();
    const int64_t B = b.rows;
    for (int64_t i = from; i < B; ++i) {
      h[i] = 0;
      h[B + i] = 0;
      h[2 * B + i] = static_cast<int32_t>(cfg_.scratch_block * cfg_.block_size);
      h[3 * B + i] = 1;
      std::fill(h + 4 * B + i * width_, h + 4 * B + (i + 1) * width_, cfg_.scratch_block);
    }
  }

  const Model* model_ = nullptr;
  KvCacheView* kv_ = nullptr;
  Config cfg_;
  int64_t width_ = 0;
  std::vector<std::unique_ptr<Bucket>> buckets_;  // smallest first
  DecodeGraphReport report_;
};

}  // namespace genprm
