#pragma once
// The generation engine: continuous batching over a paged, prefix-shared KV cache.
//
// One poll() = one scheduler step = one model forward over a packed batch:
//   1. decode rows of every running sequence (one token each), oldest first; when a block is
//      missing, the youngest running sequence is preempted (its blocks are cached and released,
//      it is requeued with its generated tokens and recomputed later);
//   2. prefill chunks of running sequences, then newly admitted ones, within max_batch_tokens;
//      admission reuses the longest cached prefix (RadixCache::match) and a request whose prompt
//      another sequence is computing right now waits for those blocks instead of computing them
//      twice;
//   3. the forward, then sampling (engine/sampler.hpp), stop conditions, streaming, and the
//      completion callbacks, which run last, on the polling thread, once the engine state is
//      consistent (they may submit or cancel).
// A request with n > 1 computes its prompt once; at its first token the sequence forks into n
// samples sharing every block (a shared partial block is copied before it is written).
// Computed full blocks enter the prefix tree as they fill; a prompt's partial tail is cached when
// its prefill ends and a finished sequence's tail when it ends, so a re-submitted conversation
// (earlier prompt + generated text + new text, re-tokenized) recomputes only from the first token
// that differs.
//
// Model requirements (Qwen2Model, or a test double): config().vocab_size / .eos_token_ids,
// forward(const ForwardBatch&, KvCacheView&) -> logits [R, V] float32, allocate_kv(blocks, bs),
// kv_bytes_per_block(bs), device().
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#include "genprm/engine/decode_graphs.hpp"
#include "genprm/engine/sampler.hpp"
#include "genprm/gen/request.hpp"
#include "genprm/engine/text_codec.hpp"
#include "genprm/kv/paged_kv.hpp"
#include "genprm/kv/radix_cache.hpp"
#include "genprm/model/forward_batch.hpp"
#include "genprm/util/error.hpp"
#include "genprm/util/fields.hpp"

namespace genprm {

struct EngineOptions {
  int64_t kv_blocks = 0;        ///< KV blocks; 0: from kv_memory_bytes, or 1024 when both are 0
  size_t kv_memory_bytes = 0;   ///< KV budget in bytes (used when kv_blocks == 0)
  int64_t block_size = 16;      ///< tokens per KV block
  int64_t max_batch_tokens = 2048;  ///< new tokens per forward (chunked-prefill budget)
  int64_t max_running_seqs = 256;   ///< sequences decoding at once
  uint64_t seed = 0;            ///< seeds requests that have no SamplingParams::seed
  std::vector<int32_t> eos_token_ids;  ///< empty: the model config's eos_token_ids
  bool prefix_caching = true;   ///< false: no reuse across requests (baseline for benchmarks)
  /// Decode steps as CUDA graphs over static buffers (engine/decode_graphs.hpp): auto (on a CUDA
  /// device with genprm's kernels), off, or static (the same buffers without capture, any device).
  DecodeGraphMode decode_graphs = DecodeGraphMode::Auto;
  int64_t graph_max_batch = 256;     ///< largest decode batch captured (buckets 1, 2, 4, ... this)
  int64_t graph_max_context = 8192;  ///< longest context (tokens) a captured step handles

  static auto fields() {
    using E = EngineOptions;
    return std::make_tuple(field("kv_blocks", &E::kv_blocks), field("kv_memory_bytes", &E::kv_memory_bytes),
                           field("block_size", &E::block_size), field("max_batch_tokens", &E::max_batch_tokens),
                           field("max_running_seqs", &E::max_running_seqs), field("seed", &E::seed),
                           field("eos_token_ids", &E::eos_token_ids), field("prefix_caching", &E::prefix_caching),
                           field("decode_graphs", &E::decode_graphs), field("graph_max_batch", &E::graph_max_batch),
                           field("graph_max_context", &E::graph_max_context));
  }
};

struct EngineStats {
  uint64_t requests_submitted = 0;
  uint64_t requests_finished = 0;
  uint64_t prompt_tokens_submitted = 0;  ///< prompt lengths of submitted requests (once per request)
  uint64_t prompt_tokens_computed = 0;   ///< prompt positions run through the model (recomputation included)
  uint64_t prompt_tokens_cached = 0;     ///< prompt tokens found in the prefix cache at first admission
  uint64_t tokens_computed = 0;          ///< all positions run through the model
  uint64_t generated_tokens = 0;
  uint64_t preemptions = 0;
  uint64_t forward_steps = 0;
  uint64_t decode_steps = 0;   ///< forward steps with at least one decode row
  uint64_t decode_rows = 0;    ///< decode tokens computed (one per running sequence per step)
  uint64_t copy_on_write = 0;  ///< blocks copied before a write
  uint64_t evictions = 0;      ///< cached blocks evicted (LRU)
  uint64_t max_batch_seqs = 0;
  uint64_t max_batch_tokens = 0;
  double mean_batch_seqs = 0.0;    ///< sequences per forward
  double mean_batch_tokens = 0.0;  ///< tokens per forward
  int64_t blocks_total = 0;
  int64_t block_size = 0;
  int64_t blocks_in_use = 0;
  int64_t blocks_free = 0;    ///< on the free list
  int64_t blocks_cached = 0;  ///< cached, unreferenced (evictable)
  int64_t running = 0;
  int64_t waiting = 0;
  // Host wall time (seconds): scheduling + batch building, the forward call (on CUDA: launching
  // it), sampling (on CUDA: includes waiting for the forward's results), and the bookkeeping after
  // it (prefix-cache inserts, accepting tokens, stop checks, streaming). The engine's own host work
  // per step is schedule + bookkeeping.
  double schedule_seconds = 0.0;
  double forward_seconds = 0.0;
  double sample_seconds = 0.0;
  double bookkeeping_seconds = 0.0;
  uint64_t graph_steps = 0;      ///< decode steps run over the static buffers (replayed graphs on CUDA)
  int64_t graph_buckets = 0;     ///< batch sizes with static buffers (0: decode graphs off)
  bool graphs_captured = false;  ///< the buckets are CUDA graphs
  double graph_capture_seconds = 0.0;
  int64_t graph_capture_bytes = 0;  ///< device memory the capture reserved

  static auto fields() {
    using E = EngineStats;
    return std::make_tuple(field("requests_submitted", &E::requests_submitted),
                           field("requests_finished", &E::requests_finished),
                           field("prompt_tokens_submitted", &E::prompt_tokens_submitted),
                           field("prompt_tokens_computed", &E::prompt_tokens_computed),
                           field("prompt_tokens_cached", &E::prompt_tokens_cached),
                           field("tokens_computed", &E::tokens_computed),
                           field("generated_tokens", &E::generated_tokens), field("preemptions", &E::preemptions),
                           field("forward_steps", &E::forward_steps), field("decode_steps", &E::decode_steps),
                           field("decode_rows", &E::decode_rows), field("copy_on_write", &E::copy_on_write),
                           field("evictions", &E::evictions), field("max_batch_seqs", &E::max_batch_seqs),
                           field("max_batch_tokens", &E::max_batch_tokens),
                           field("mean_batch_seqs", &E::mean_batch_seqs),
                           field("mean_batch_tokens", &E::mean_batch_tokens),
                           field("blocks_total", &E::blocks_total), field("block_size", &E::block_size),
                           field("blocks_in_use", &E::blocks_in_use), field("blocks_free", &E::blocks_free),
                           field("blocks_cached", &E::blocks_cached), field("running", &E::running),
                           field("waiting", &E::waiting), field("schedule_seconds", &E::schedule_seconds),
                           field("forward_seconds", &E::forward_seconds),
                           field("sample_seconds", &E::sample_seconds),
                           field("bookkeeping_seconds", &E::bookkeeping_seconds),
                           field("graph_steps", &E::graph_steps), field("graph_buckets", &E::graph_buckets),
                           field("graphs_captured", &E::graphs_captured),
                           field("graph_capture_seconds", &E::graph_capture_seconds),
                           field("graph_capture_bytes", &E::graph_capture_bytes));
  }
};

template <class Model>
class BasicEngine {
 public:
  /// `model` must outlive the engine. `codec` (optional) is needed for text prompts, stop strings
  /// and output text.
  BasicEngine(const Model& model, TextCodec codec = {}, EngineOptions opts = {})
      : model_(model), codec_(std::move(codec)), opts_(std::move(opts)),
        cache_(num_blocks_for(model, opts_), static_cast<int32_t>(opts_.block_size)) {
    GENPRM_CHECK_ARG(opts_.max_batch_tokens >= 1, "EngineOptions.max_batch_tokens must be >= 1, got {}",
                     opts_.max_batch_tokens);
    GENPRM_CHECK_ARG(opts_.max_running_seqs >= 1, "EngineOptions.max_running_seqs must be >= 1, got {}",
                     opts_.max_running_seqs);
    vocab_ = static_cast<int64_t>(model_.config().vocab_size);
    if (!opts_.eos_token_ids.empty()) {
      eos_.insert(opts_.eos_token_ids.begin(), opts_.eos_token_ids.end());
    } else {
      for (auto e : model_.config().eos_token_ids) eos_.insert(static_cast<int32_t>(e));
    }
    // Decode graphs write their padding rows into one extra block that the pool never hands out.
    const bool graphs = DecodeGraphs<Model>::wanted(model_, opts_.decode_graphs);
    kv_ = model_.allocate_kv(cache_.num_blocks() + (graphs ? 1 : 0), opts_.block_size);
    if (graphs) {
      typename DecodeGraphs<Model>::Config gc;
      gc.mode = opts_.decode_graphs;
      gc.max_batch = opts_.graph_max_batch;
      gc.max_context = opts_.graph_max_context;
      gc.block_size = opts_.block_size;
      gc.scratch_block = cache_.num_blocks();
      graphs_ = DecodeGraphs<Model>(model_, kv_, gc);
    }
  }

  BasicEngine(const BasicEngine&) = delete;
  BasicEngine& operator=(const BasicEngine&) = delete;

  /// Queues a request and returns its id at once. Throws ValueError for invalid input (empty
  /// prompt, token id out of range, text without a tokenizer, bad sampling parameters). A request
  /// that can never fit in the KV cache completes with GenerationOutput::error set.
  uint64_t submit(GenerationRequest req, GenerationCallback on_done = {}) {
    const SamplingParams& p = req.params;
    check_sampling_params(p, vocab_);
    GENPRM_CHECK_ARG(req.n >= 1, "GenerationRequest.n must be >= 1, got {}", req.n);
    GENPRM_CHECK_ARG(codec_ || p.stop.empty(), "stop strings need a tokenizer (the engine has none)");
    std::vector<int32_t> prompt = req.prompt_ids;
    if (prompt.empty()) {
      GENPRM_CHECK_ARG(!req.prompt_text.empty(), "GenerationRequest: empty prompt (no prompt_ids, no prompt_text)");
      GENPRM_CHECK_ARG(static_cast<bool>(codec_), "GenerationRequest: a text prompt needs a tokenizer (the engine has none)");
      prompt = codec_.encode(req.prompt_text);
      GENPRM_CHECK_ARG(!prompt.empty(), "GenerationRequest: prompt_text encodes to no token");
    }
    for (int32_t t : prompt)
      GENPRM_CHECK_ARG(t >= 0 && t < vocab_, "GenerationRequest.prompt_ids: token {} outside [0, {})", t, vocab_);

    auto r = std::make_shared<Request>();
    r->id = next_request_id_++;
    r->cb = std::move(on_done);
    r->remaining = req.n;
    r->seed = p.seed ? *p.seed : splitmix64(opts_.seed ^ splitmix64(r->id));
    for (const auto& s : p.stop) r->max_stop_len = std::max(r->max_stop_len, s.size());
    r->out.request_id = r->id;
    r->out.prompt_ids = prompt;
    r->out.samples.resize(static_cast<size_t>(req.n));
    r->req = std::move(req);
    requests_[r->id] = r;
    ++stats_.requests_submitted;
    stats_.prompt_tokens_submitted += prompt.size();

    auto s = std::make_shared<Seq>();
    s->req = r;
    s->sample = 0;
    s->order = next_order_++;
    s->tokens = std::move(prompt);
    s->prompt_len = s->tokens.size();
    s->fork_pending = r->req.n > 1;
    if (codec_) s->dec = codec_.new_decoder();
    const size_t bs = static_cast<size_t>(opts_.block_size);
    if ((s->prompt_len + bs - 1) / bs > static_cast<size_t>(cache_.num_blocks())) {
      fail_request(*r, fmt::format("prompt of {} tokens needs {} KV blocks of {} tokens, the cache has {}",
                                   s->prompt_len, (s->prompt_len + bs - 1) / bs, bs, cache_.num_blocks()));
      return r->id;
    }
    r->seqs.push_back(s);
    waiting_.push_back(std::move(s));
    return r->id;
  }

  /// Runs one scheduler step (one forward) and then the callbacks that became due.
  /// Returns false when nothing is left to do.
  bool poll() {
    process_cancellations();
    if (!waiting_.empty() || !running_.empty()) step();
    deliver_pending();
    return !idle();
  }

  void run_until_idle() {
    while (poll()) {
    }
  }

  /// Aborts a request (finish_reason "abort"; its callback runs at the next poll). Unknown or
  /// finished ids are ignored.
  void cancel(uint64_t request_id) {
    auto it = requests_.find(request_id);
    if (it == requests_.end()) return;
    it->second->cancelled = true;
    cancel_pending_ = true;
  }

  /// Synchronous helper: submits all, runs until they are done, returns outputs in order.
  std::vector<GenerationOutput> generate(std::vector<GenerationRequest> reqs) {
    auto results = std::make_shared<std::vector<GenerationOutput>>(reqs.size());
    for (size_t i = 0; i < reqs.size(); ++i)
      submit(std::move(reqs[i]), [results, i](GenerationOutput o) { (*results)[i] = std::move(o); });
    run_until_idle();
    return std::move(*results);
  }

  bool idle() const { return waiting_.empty() && running_.empty() && pending_.empty() && !cancel_pending_; }

  EngineStats stats() const {
    EngineStats s = stats_;
    KvCacheStats k = cache_.stats();
    s.evictions = k.evictions;
    s.blocks_total = k.num_blocks;
    s.block_size = k.block_size;
    s.blocks_in_use = static_cast<int64_t>(k.blocks_in_use);
    s.blocks_free = static_cast<int64_t>(k.blocks_free);
    s.blocks_cached = static_cast<int64_t>(k.blocks_cached_idle);
    s.running = static_cast<int64_t>(running_.size());
    s.waiting = static_cast<int64_t>(waiting_.size());
    const DecodeGraphReport& g = graphs_.report();
    s.graph_buckets = g.buckets;
    s.graphs_captured = g.captured;
    s.graph_capture_seconds = g.capture_seconds;
    s.graph_capture_bytes = g.capture_bytes;
    if (s.forward_steps > 0) {
      s.mean_batch_seqs = static_cast<double>(batch_seqs_sum_) / static_cast<double>(s.forward_steps);
      s.mean_batch_tokens = static_cast<double>(s.tokens_computed) / static_cast<double>(s.forward_steps);
    }
    return s;
  }

  const RadixCache& cache() const { return cache_; }
  const EngineOptions& options() const { return opts_; }
  const Model& model() const { return model_; }
  bool has_tokenizer() const { return static_cast<bool>(codec_); }

 private:
  struct Seq;
  struct Request {
    uint64_t id = 0;
    GenerationRequest req;
    GenerationCallback cb;
    GenerationOutput out;
    int remaining = 0;
    bool cancelled = false;
    bool admitted = false;
    uint64_t seed = 0;
    size_t max_stop_len = 0;
    std::vector<std::weak_ptr<Seq>> seqs;
  };
  struct Seq {
    std::shared_ptr<Request> req;
    int sample = 0;
    uint64_t order = 0;  // priority: lower = older
    std::vector<int32_t> tokens;  // prompt + generated
    size_t prompt_len = 0;
    size_t computed = 0;         // tokens whose K/V are in the cache
    size_t inserted_full = 0;    // full blocks already recorded in the prefix tree
    std::vector<int32_t> blocks;
    bool fork_pending = false;   // n > 1, not yet forked (forks at the first sampled token)
    bool done = false;
    SampleOutput out;
    std::unique_ptr<IncrementalDetokenizer> dec;
    std::string text;
    size_t streamed = 0;
  };
  struct Sched {
    Seq* seq;
    size_t n_new;
  };

  static int32_t num_blocks_for(const Model& model, const EngineOptions& o) {
    GENPRM_CHECK_ARG(o.block_size >= 1, "EngineOptions.block_size must be >= 1, got {}", o.block_size);
    if (o.kv_blocks > 0) return static_cast<int32_t>(o.kv_blocks);
    if (o.kv_memory_bytes > 0)
      return BlockPool::blocks_for_budget(o.kv_memory_bytes, model.kv_bytes_per_block(o.block_size));
    return 1024;
  }

  size_t bs() const { return static_cast<size_t>(opts_.block_size); }

  // Makes slots for tokens [computed, computed + n) of s: copies a shared/cached block about to
  // be written, then appends blocks. Returns how many of the n tokens have a slot (0: none).
  size_t reserve(Seq& s, size_t n, std::vector<BlockCopy>& copies) {
    const size_t p = s.computed;
    const size_t bi = p / bs();
    if (bi < s.blocks.size() && cache_.needs_copy(s.blocks[bi])) {
      auto nb = cache_.allocate();
      if (!nb) return 0;
      copies.push_back({s.blocks[bi], *nb});
      ++stats_.copy_on_write;
      cache_.release(s.blocks[bi]);
      s.blocks[bi] = *nb;
    }
    const size_t need_blocks = (p + n + bs() - 1) / bs();
    while (s.blocks.size() < need_blocks) {
      auto nb = cache_.allocate();
      if (!nb) break;
      s.blocks.push_back(*nb);
    }
    const size_t slots = s.blocks.size() * bs();
    return slots > p ? std::min(n, slots - p) : 0;
  }

  // Caches what s computed (full blocks, and the partial tail when asked) and drops its blocks.
  void release_blocks(Seq& s, bool cache_tail) {
    if (opts_.prefix_caching && s.computed > 0) cache_.insert(s.tokens.data(), s.computed, s.blocks, cache_tail);
    cache_.release(s.blocks);
    s.blocks.clear();
    s.computed = 0;
    s.inserted_full = 0;
  }

  void preempt(const std::shared_ptr<Seq>& s) {
    release_blocks(*s, /*cache_tail=*/true);
    ++stats_.preemptions;
    // Requeue first among the waiting, oldest first.
    auto it = waiting_.begin();
    while (it != waiting_.end() && (*it)->order < s->order) ++it;
    waiting_.insert(it, s);
  }

  // True when another running sequence is computing part of w's prompt that is not cached yet:
  // w waits for those blocks rather than computing them a second time.
  bool wait_for_shared_prefix(const Seq& w) const {
    if (!opts_.prefix_caching) return false;
    const size_t cached = cache_.match_length(w.tokens.data(), w.tokens.size());
    for (const auto& r : running_) {
      if (r->computed >= r->prompt_len) continue;
      const size_t n = std::min(w.tokens.size(), r->tokens.size());
      size_t l = 0;
      while (l < n && w.tokens[l] == r->tokens[l]) ++l;
      if (l <= cached || r->computed >= l) continue;
      if (l - cached >= bs() || l + 1 >= w.tokens.size()) return true;
    }
    return false;
  }

  static double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }

  void step() {
    step_start_ = now_seconds();
    int64_t budget = opts_.max_batch_tokens;
    std::vector<Sched> sched;
    std::vector<BlockCopy> copies;
    // 1. Decode rows, oldest first; preempt the youngest when a block is missing.
    for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
      Seq& s = *running_[i];
      if (s.tokens.size() - s.computed != 1) continue;
      bool ok = reserve(s, 1, copies) == 1;
      while (!ok && running_.size() > i + 1) {
        auto victim = running_.back();
        running_.pop_back();
        preempt(victim);
        ok = reserve(s, 1, copies) == 1;
      }
      if (!ok) {  // s is the youngest
        auto self = running_[i];
        running_.erase(running_.begin() + static_cast<long>(i));
        if (running_.empty()) {
          cannot_fit(self);
        } else {
          preempt(self);
        }
        --i;
        continue;
      }
      sched.push_back({&s, 1});
      --budget;
    }
    // 2. Prefill chunks of running sequences (no preemption for prefill).
    for (auto& sp : running_) {
      if (budget <= 0) break;
      Seq& s = *sp;
      const size_t need = s.tokens.size() - s.computed;
      if (need <= 1) continue;
      size_t got = reserve(s, std::min(need, static_cast<size_t>(budget)), copies);
      if (got == 0) continue;
      sched.push_back({&s, got});
      budget -= static_cast<int64_t>(got);
    }
    // 3. Admission, first come first served.
    for (auto it = waiting_.begin(); it != waiting_.end() && budget > 0 &&
                                     static_cast<int64_t>(running_.size()) < opts_.max_running_seqs;) {
      Seq& w = **it;
      if (wait_for_shared_prefix(w)) {
        ++it;
        continue;
      }
      if (opts_.prefix_caching) {
        PrefixMatch m = cache_.match(w.tokens.data(), w.tokens.size());
        w.blocks = std::move(m.blocks);
        w.computed = m.num_tokens;
        // The last token is always computed (its logits are needed): copy-on-write of its block.
        if (w.computed == w.tokens.size()) --w.computed;
        w.inserted_full = w.computed / bs();
      }
      const size_t need = w.tokens.size() - w.computed;
      size_t got = reserve(w, std::min(need, static_cast<size_t>(budget)), copies);
      if (got == 0) {
        cache_.release(w.blocks);
        w.blocks.clear();
        w.computed = 0;
        break;
      }
      if (!w.req->admitted) {
        w.req->admitted = true;
        const size_t cached = std::min(w.computed, w.prompt_len);
        w.req->out.cached_prompt_tokens = cached;
        stats_.prompt_tokens_cached += cached;
      }
      sched.push_back({&w, got});
      budget -= static_cast<int64_t>(got);
      running_.push_back(*it);
      it = waiting_.erase(it);
    }
    if (sched.empty()) {
      // Nothing could run: every block is held by running prefills. Free the youngest.
      if (running_.size() > 1) {
        auto victim = running_.back();
        running_.pop_back();
        preempt(victim);
      } else if (running_.size() == 1) {
        auto self = running_.back();
        running_.pop_back();
        cannot_fit(self);
      }
      return;
    }
    run_batch(sched, copies);
  }

  void run_batch(const std::vector<Sched>& sched, const std::vector<BlockCopy>& copies) {
    std::vector<int64_t> tok, pos, slot, qstart{0}, ctx, logit_rows;
    std::vector<Seq*> logit_seqs;
    size_t max_blocks = 1, decode_rows = 0;
    for (const Sched& e : sched) max_blocks = std::max(max_blocks, e.seq->blocks.size());
    std::vector<int64_t> table(sched.size() * max_blocks, 0);
    for (size_t i = 0; i < sched.size(); ++i) {
      const Seq& s = *sched[i].seq;
      for (size_t p = s.computed; p < s.computed + sched[i].n_new; ++p) {
        tok.push_back(s.tokens[p]);
        pos.push_back(static_cast<int64_t>(p));
        slot.push_back(static_cast<int64_t>(s.blocks[p / bs()]) * opts_.block_size + static_cast<int64_t>(p % bs()));
        if (p < s.prompt_len) ++stats_.prompt_tokens_computed;
      }
      for (size_t b = 0; b < s.blocks.size(); ++b) table[i * max_blocks + b] = s.blocks[b];
      qstart.push_back(qstart.back() + static_cast<int64_t>(sched[i].n_new));
      ctx.push_back(static_cast<int64_t>(s.computed + sched[i].n_new));
      if (s.computed + sched[i].n_new == s.tokens.size()) {
        logit_rows.push_back(qstart.back() - 1);
        logit_seqs.push_back(sched[i].seq);
      }
      if (sched[i].n_new == 1 && s.computed + 1 == s.tokens.size() && s.tokens.size() > s.prompt_len) ++decode_rows;
    }
    const bool any_logits = !logit_rows.empty();
    // A decode-only step (every row one new token, every row's logits) that fits a bucket of the
    // static buffers runs there; any other step through Model::forward.
    const bool static_step = graphs_.enabled() && tok.size() == sched.size() && logit_rows.size() == sched.size() &&
                             graphs_.fits(sched.size(), max_blocks);
    ForwardBatch batch;
    if (!static_step) {
      if (!any_logits) logit_rows.push_back(0);
      const auto i64 = at::TensorOptions().dtype(at::kLong);
      batch.token_ids = at::tensor(tok, i64);
      batch.positions = at::tensor(pos, i64);
      batch.slot_mapping = at::tensor(slot, i64);
      batch.block_tables =
          at::tensor(table, i64).view({static_cast<int64_t>(sched.size()), static_cast<int64_t>(max_blocks)});
      batch.logits_indices = at::tensor(logit_rows, i64);
      batch.query_start = std::move(qstart);
      batch.context_lens = std::move(ctx);  // not needed after: this step is not a static one
    }

    const double t_fwd = now_seconds();
    stats_.schedule_seconds += t_fwd - step_start_;
    copy_blocks(kv_, copies);
    at::Tensor logits;  // [R, V] float32
    if (static_step) {
      logits = graphs_.run(tok, pos, slot, ctx, table, max_blocks);
      ++stats_.graph_steps;
    } else {
      logits = model_.forward(batch, kv_);
    }
    const double t_after = now_seconds();
    stats_.forward_seconds += t_after - t_fwd;

    ++stats_.forward_steps;
    stats_.tokens_computed += tok.size();
    stats_.decode_rows += decode_rows;
    if (decode_rows > 0) ++stats_.decode_steps;
    batch_seqs_sum_ += sched.size();
    stats_.max_batch_seqs = std::max<uint64_t>(stats_.max_batch_seqs, sched.size());
    stats_.max_batch_tokens = std::max<uint64_t>(stats_.max_batch_tokens, tok.size());

    for (const Sched& e : sched) {
      Seq& s = *e.seq;
      s.computed += e.n_new;
      if (!opts_.prefix_caching) continue;
      const bool prompt_done = e.n_new > 1 && s.computed == s.tokens.size();
      if (s.computed / bs() > s.inserted_full || prompt_done) {
        cache_.insert(s.tokens.data(), s.computed, s.blocks, prompt_done);
        s.inserted_full = s.computed / bs();
      }
    }
    if (any_logits) sample_and_advance(logits, logit_seqs);
    running_.erase(std::remove_if(running_.begin(), running_.end(), [](const auto& s) { return s->done; }),
                   running_.end());
    stats_.bookkeeping_seconds += now_seconds() - t_after - sample_wall_;
    stats_.sample_seconds += sample_wall_;
    sample_wall_ = 0.0;
  }

  void sample_and_advance(const at::Tensor& logits, const std::vector<Seq*>& seqs) {
    std::vector<SamplingRow> rows;
    std::vector<int64_t> row_of;
    bool forks = false;
    for (size_t i = 0; i < seqs.size(); ++i) {
      Seq& s = *seqs[i];
      const int copies = s.fork_pending ? s.req->req.n : 1;
      forks |= copies > 1;
      for (int c = 0; c < copies; ++c) {
        SamplingRow r;
        r.params = &s.req->req.params;
        r.seed = s.req->seed;
        r.sample_index = static_cast<uint64_t>(s.req->req.params.first_sample) + static_cast<uint64_t>(s.sample + c);
        r.position = s.tokens.size() - s.prompt_len;
        r.history = &s.tokens;
        rows.push_back(r);
        row_of.push_back(static_cast<int64_t>(i));
      }
    }
    at::Tensor rows_logits = forks ? logits.index_select(0, at::tensor(row_of, at::TensorOptions().dtype(at::kLong)).to(logits.device()))
                                   : logits;
    const double t0 = now_seconds();
    std::vector<SampledToken> toks = sample_rows(rows_logits, rows);
    sample_wall_ += now_seconds() - t0;
    size_t k = 0;
    for (Seq* sp : seqs) {
      Seq& s = *sp;
      if (s.fork_pending) {
        s.fork_pending = false;
        const int n = s.req->req.n;
        std::vector<std::shared_ptr<Seq>> kids;
        for (int c = 1; c < n; ++c) {
          auto kid = std::make_shared<Seq>();
          kid->req = s.req;
          kid->sample = c;
          kid->order = s.order;
          kid->tokens = s.tokens;
          kid->prompt_len = s.prompt_len;
          kid->computed = s.computed;
          kid->inserted_full = s.inserted_full;
          kid->blocks = s.blocks;
          for (int32_t b : kid->blocks) cache_.share(b);
          if (codec_) kid->dec = codec_.new_decoder();
          s.req->seqs.push_back(kid);
          kids.push_back(kid);
        }
        accept_token(s, toks[k++]);
        for (auto& kid : kids) {
          accept_token(*kid, toks[k++]);
          running_.push_back(kid);
        }
      } else {
        accept_token(s, toks[k++]);
      }
    }
  }

  void accept_token(Seq& s, const SampledToken& st) {
    const SamplingParams& p = s.req->req.params;
    const int32_t tok = st.token;
    s.tokens.push_back(tok);
    s.out.token_ids.push_back(tok);
    if (st.has_logprobs) s.out.logprobs.push_back(st.logprobs);
    ++stats_.generated_tokens;
    if (std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), tok) != p.stop_token_ids.end()) {
      finish(s, "stop", std::to_string(tok), true);
      return;
    }
    if (!p.ignore_eos && eos_.count(tok) > 0) {
      finish(s, "stop", "", true);
      return;
    }
    if (s.dec) {
      const size_t old = s.text.size();
      s.text += s.dec->push(tok);
      if (finish_on_stop_string(s, old)) return;
    }
    if (static_cast<int>(s.out.token_ids.size()) >= p.max_tokens) {
      finish(s, "length", "", true);
      return;
    }
    stream(s, false);
  }

  // Looks for a stop string in the text added since `old` (and the tail before it that could
  // start one); cuts the text there and finishes.
  bool finish_on_stop_string(Seq& s, size_t old) {
    const SamplingParams& p = s.req->req.params;
    if (p.stop.empty()) return false;
    const size_t from = old >= s.req->max_stop_len ? old - s.req->max_stop_len + 1 : 0;
    size_t best = std::string::npos;
    const std::string* which = nullptr;
    for (const auto& stop : p.stop) {
      size_t at = s.text.find(stop, from);
      if (at != std::string::npos && at < best) {
        best = at;
        which = &stop;
      }
    }
    if (which == nullptr) return false;
    s.text.resize(best + (p.include_stop_str_in_output ? which->size() : 0));
    finish(s, "stop", *which, false);
    return true;
  }

  // Emits text that is final: all of it at the end, else all but what could begin a stop string.
  void stream(Seq& s, bool final) {
    const auto& cb = s.req->req.on_text;
    if (!cb || !s.dec) return;
    size_t upto = s.text.size();
    if (!final && s.req->max_stop_len > 1) {
      const size_t hold = s.req->max_stop_len - 1;
      upto = upto > hold ? upto - hold : 0;
      while (upto > s.streamed && upto < s.text.size() && (static_cast<unsigned char>(s.text[upto]) & 0xC0) == 0x80)
        --upto;  // never split a UTF-8 character
    }
    if (upto <= s.streamed) return;
    pending_.push_back([cb, i = s.sample, piece = s.text.substr(s.streamed, upto - s.streamed)] { cb(i, piece); });
    s.streamed = upto;
  }

  void finish(Seq& s, const std::string& reason, const std::string& stop_reason, bool flush) {
    if (s.done) return;
    if (flush && s.dec) s.text += s.dec->flush();
    s.out.text = s.text;
    s.out.finish_reason = reason;
    s.out.stop_reason = stop_reason;
    stream(s, true);
    release_blocks(s, /*cache_tail=*/true);
    s.done = true;
    Request& r = *s.req;
    const int n_done = s.fork_pending ? r.req.n : 1;  // an unforked n > 1 sequence ends all samples
    if (s.fork_pending) {
      for (int c = 1; c < r.req.n; ++c) r.out.samples[static_cast<size_t>(c)].finish_reason = reason;
    }
    r.out.samples[static_cast<size_t>(s.sample)] = std::move(s.out);
    r.remaining -= n_done;
    if (r.remaining <= 0) complete(r);
  }

  void complete(Request& r) {
    ++stats_.requests_finished;
    auto self = requests_.find(r.id);
    std::shared_ptr<Request> keep = self != requests_.end() ? self->second : nullptr;
    if (r.cb) {
      pending_.push_back([cb = std::move(r.cb), out = std::move(r.out)]() mutable { cb(std::move(out)); });
    }
    if (keep) requests_.erase(self);
  }

  void fail_request(Request& r, const std::string& message) {
    r.out.error = message;
    for (auto& w : r.seqs) {
      if (auto s = w.lock()) {
        if (!s->done) finish(*s, "abort", "", true);
      }
    }
    if (r.remaining > 0) {  // never queued
      for (auto& o : r.out.samples)
        if (o.finish_reason.empty()) o.finish_reason = "abort";
      r.remaining = 0;
      complete(r);
    }
    remove_done();
  }

  void cannot_fit(const std::shared_ptr<Seq>& s) {
    auto req = s->req;
    fail_request(*req, fmt::format("KV cache exhausted: a sequence of {} tokens does not fit in {} blocks of {} tokens",
                                   s->tokens.size() + 1, cache_.num_blocks(), bs()));
  }

  void remove_done() {
    running_.erase(std::remove_if(running_.begin(), running_.end(), [](const auto& s) { return s->done; }),
                   running_.end());
    waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(), [](const auto& s) { return s->done; }),
                   waiting_.end());
  }

  void process_cancellations() {
    if (!cancel_pending_) return;
    cancel_pending_ = false;
    std::vector<std::shared_ptr<Request>> cancelled;
    for (auto& kv : requests_)
      if (kv.second->cancelled) cancelled.push_back(kv.second);
    for (auto& r : cancelled) {
      for (auto& w : r->seqs)
        if (auto s = w.lock())
          if (!s->done) finish(*s, "abort", "", true);
    }
    remove_done();
  }

  void deliver_pending() {
    if (pending_.empty()) return;
    std::vector<std::function<void()>> due;
    due.swap(pending_);
    for (size_t i = 0; i < due.size(); ++i) {
      try {
        due[i]();
      } catch (...) {
        // Keep what was not delivered yet, in order, then let the caller see the exception.
        pending_.insert(pending_.begin(), std::make_move_iterator(due.begin() + static_cast<long>(i) + 1),
                        std::make_move_iterator(due.end()));
        throw;
      }
    }
  }

  const Model& model_;
  TextCodec codec_;
  EngineOptions opts_;
  RadixCache cache_;
  KvCacheView kv_;
  DecodeGraphs<Model> graphs_;  // after kv_: it refers to it
  int64_t vocab_ = 0;
  std::unordered_set<int32_t> eos_;
  std::deque<std::shared_ptr<Seq>> waiting_;
  std::vector<std::shared_ptr<Seq>> running_;
  std::unordered_map<uint64_t, std::shared_ptr<Request>> requests_;
  std::vector<std::function<void()>> pending_;
  bool cancel_pending_ = false;
  uint64_t next_request_id_ = 1;
  uint64_t next_order_ = 0;
  uint64_t batch_seqs_sum_ = 0;
  double step_start_ = 0.0;
  double sample_wall_ = 0.0;  // sample_rows time within the current step
  EngineStats stats_;
};

}  // namespace genprm
