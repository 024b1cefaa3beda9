#pragma once
// Batched sampling over logits [R, V] float32 with per-row parameters (same source on CPU and
// CUDA): repetition penalty -> temperature -> top-k -> top-p (over the top-k renormalised
// distribution) -> min-p, then inverse-CDF sampling with one counter-based uniform per row
// (gen/rng.hpp), so a seeded row gives the same token whatever the batch. Temperature 0 is
// greedy (argmax after the repetition penalty). Log-probabilities per SamplingParams::logprobs,
// ::tracked_token_ids and ::processed_logprobs (raw: log_softmax of the model's logits; processed:
// of the distribution sampled from, -inf for filtered tokens; greedy rows use temperature 1).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include <ATen/ATen.h>

#include "genprm/gen/request.hpp"
#include "genprm/gen/rng.hpp"
#include "genprm/util/error.hpp"

namespace genprm {

/// One row to sample: its parameters and the key of its random number.
struct SamplingRow {
  const SamplingParams* params = nullptr;
  uint64_t seed = 0;
  uint64_t sample_index = 0;
  uint64_t position = 0;                         ///< generated position (0 = first new token)
  const std::vector<int32_t>* history = nullptr;  ///< prompt + generated tokens (repetition penalty)
};

struct SampledToken {
  int32_t token = -1;
  bool has_logprobs = false;
  TokenLogprobs logprobs;
};

/// Validates sampling parameters; throws ValueError naming the field and the rule.
inline void check_sampling_params(const SamplingParams& p, int64_t vocab_size) {
  GENPRM_CHECK_ARG(p.temperature >= 0.0f, "SamplingParams.temperature must be >= 0, got {}", p.temperature);
  GENPRM_CHECK_ARG(p.top_p > 0.0f && p.top_p <= 1.0f, "SamplingParams.top_p must be in (0, 1], got {}", p.top_p);
  GENPRM_CHECK_ARG(p.min_p >= 0.0f && p.min_p <= 1.0f, "SamplingParams.min_p must be in [0, 1], got {}", p.min_p);
  GENPRM_CHECK_ARG(p.repetition_penalty > 0.0f, "SamplingParams.repetition_penalty must be > 0, got {}",
                   p.repetition_penalty);
  GENPRM_CHECK_ARG(p.max_tokens >= 1, "SamplingParams.max_tokens must be >= 1, got {}", p.max_tokens);
  GENPRM_CHECK_ARG(p.first_sample >= 0, "SamplingParams.first_sample must be >= 0, got {}", p.first_sample);
  GENPRM_CHECK_ARG(p.logprobs >= -1 && p.logprobs <= vocab_size,
                   "SamplingParams.logprobs must be -1 (none), 0 or a top-k count <= vocab size {}, got {}",
                   vocab_size, p.logprobs);
  for (int32_t t : p.tracked_token_ids)
    GENPRM_CHECK_ARG(t >= 0 && t < vocab_size, "SamplingParams.tracked_token_ids: id {} outside [0, {})", t,
                     vocab_size);
  for (int32_t t : p.stop_token_ids)
    GENPRM_CHECK_ARG(t >= 0, "SamplingParams.stop_token_ids: negative id {}", t);
  for (const auto& s : p.stop) GENPRM_CHECK_ARG(!s.empty(), "SamplingParams.stop: empty stop string");
}

/// Samples one token per row of `logits` [R, V] (float32, any device). rows.size() == R.
inline std::vector<SampledToken> sample_rows(const at::Tensor& logits_in, const std::vector<SamplingRow>& rows) {
  const int64_t R = logits_in.size(0), V = logits_in.size(1);
  GENPRM_CHECK(static_cast<int64_t>(rows.size()) == R, "sample_rows: {} rows of parameters for {} logit rows",
               rows.size(), R);
  std::vector<SampledToken> out(static_cast<size_t>(R));
  if (R == 0) return out;
  const at::Device dev = logits_in.device();
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  const auto i64 = at::TensorOptions().dtype(at::kLong);
  at::Tensor raw = logits_in.to(at::kFloat);

  bool any_penalty = false, any_filter = false, any_greedy = false, all_greedy = true;
  bool any_raw_lp = false, any_proc_lp = false;
  // The per-row parameters cross to the device as ONE tensor (one transfer, no wait for the
  // forward): rows temperature, top-p, min-p, top-k, uniform, greedy flag.
  std::vector<float> packed(static_cast<size_t>(6 * R));
  std::vector<int64_t> top_k(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) {
    const SamplingParams& p = *rows[static_cast<size_t>(r)].params;
    const bool greedy = p.temperature == 0.0f;
    any_greedy |= greedy;
    all_greedy &= greedy;
    any_penalty |= p.repetition_penalty != 1.0f;
    top_k[r] = (p.top_k > 0 && p.top_k < V) ? p.top_k : V;
    packed[r] = greedy ? 1.0f : p.temperature;
    packed[R + r] = p.top_p < 1.0f ? p.top_p : 2.0f;  // 2: never reached by a cumulative probability
    packed[2 * R + r] = p.min_p;
    packed[3 * R + r] = static_cast<float>(top_k[r]);  // exact: vocabularies are below 2^24
    packed[5 * R + r] = greedy ? 1.0f : 0.0f;
    const bool filters = !greedy && (top_k[r] < V || p.top_p < 1.0f || p.min_p > 0.0f);
    any_filter |= filters;
    const bool wants_lp = p.logprobs >= 0 || !p.tracked_token_ids.empty();
    any_raw_lp |= wants_lp && !p.processed_logprobs;
    any_proc_lp |= wants_lp && p.processed_logprobs;
    const SamplingRow& row = rows[static_cast<size_t>(r)];
    packed[4 * R + r] = static_cast<float>(counter_uniform(row.seed, row.sample_index, row.position));
  }
  const at::Tensor params = at::tensor(packed, f32).view({6, R}).to(dev, /*non_blocking=*/true);
  auto param = [&](int i) { return params.select(0, i).unsqueeze(1); };  // [R, 1]

  at::Tensor raw_lp;
  if (any_raw_lp) raw_lp = at::log_softmax(raw, 1);

  // Repetition penalty (HF/vLLM): logits of tokens seen in prompt + output: >0 -> /p, <=0 -> *p.
  at::Tensor logits = any_penalty ? raw.clone() : raw;
  if (any_penalty) {
    for (int64_t r = 0; r < R; ++r) {
      const SamplingRow& row = rows[static_cast<size_t>(r)];
      const float pen = row.params->repetition_penalty;
      if (pen == 1.0f || row.history == nullptr || row.history->empty()) continue;
      std::vector<int64_t> ids(row.history->begin(), row.history->end());
      std::sort(ids.begin(), ids.end());
      ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      at::Tensor idx = at::tensor(ids, i64).to(dev);
      at::Tensor rowv = logits[r];
      at::Tensor g = rowv.index_select(0, idx);
      rowv.index_copy_(0, idx, at::where(g > 0, g / pen, g * pen));
    }
  }

  at::Tensor greedy_tok;
  if (any_greedy) greedy_tok = logits.argmax(1);

  at::Tensor scaled, probs, sampled, proc_lp;
  if (!all_greedy || any_proc_lp) scaled = logits / param(0);
  if (!all_greedy) {
    probs = at::softmax(scaled, 1);  // [R, V]
    at::Tensor u = param(4);
    if (any_filter) {
      // Candidates best first: the top max(top_k) when every sampled row has a top-k (cheaper
      // than sorting the vocabulary), else the whole vocabulary sorted.
      int64_t kmax = 1;
      for (int64_t r = 0; r < R; ++r)
        if (rows[static_cast<size_t>(r)].params->temperature != 0.0f) kmax = std::max(kmax, top_k[r]);
      const int64_t C = kmax;
      auto sorted = C < V ? probs.topk(C, 1, /*largest=*/true, /*sorted=*/true) : probs.sort(1, /*descending=*/true);
      at::Tensor sp = std::get<0>(sorted), si = std::get<1>(sorted);  // [R, C]
      const int64_t V = C;  // the candidate count from here on
      at::Tensor rank = at::arange(V, i64.device(dev)).unsqueeze(0);
      at::Tensor keep = rank < param(3).to(at::kLong);
      at::Tensor pk = sp * keep;
      at::Tensor pk_norm = pk / pk.sum(1, true);
      at::Tensor exclusive = pk_norm.cumsum(1) - pk_norm;
      keep = keep & (exclusive < param(1));
      keep = keep & (sp >= sp.select(1, 0).unsqueeze(1) * param(2));
      at::Tensor filtered = sp * keep;  // sorted order, best first (the best is always kept)
      at::Tensor cdf = filtered.cumsum(1);
      at::Tensor total = cdf.select(1, V - 1).unsqueeze(1);
      // Rounding can put u * total at or past the last kept step: clamp to the last kept token
      // (the kept set is a prefix of the sorted order).
      at::Tensor last_kept = keep.sum(1, /*keepdim=*/true) - 1;
      at::Tensor pos = at::minimum(at::searchsorted(cdf, u * total, /*out_int32=*/false, /*right=*/true), last_kept);
      sampled = si.gather(1, pos).squeeze(1);
      if (any_proc_lp) {
        proc_lp = at::full({R, probs.size(1)}, -std::numeric_limits<float>::infinity(), f32.device(dev));
        proc_lp.scatter_(1, si, at::log(filtered / total));
      }
    } else {
      at::Tensor cdf = probs.cumsum(1);
      at::Tensor total = cdf.select(1, V - 1).unsqueeze(1);
      // Zero-probability tokens are never drawn: searchsorted(right) skips flat cdf steps, and
      // rounding past the end is clamped to the last token with a non-zero probability.
      at::Tensor last_nonzero = at::where(probs > 0, at::arange(V, i64.device(dev)).unsqueeze(0),
                                          at::zeros({1, 1}, i64.device(dev))).amax(1, true);
      sampled = at::minimum(at::searchsorted(cdf, u * total, false, true), last_nonzero).squeeze(1);
    }
  }
  if (any_proc_lp && !proc_lp.defined()) proc_lp = at::log_softmax(scaled, 1);

  at::Tensor tokens;
  if (all_greedy) {
    tokens = greedy_tok;
  } else if (any_greedy) {
    tokens = at::where(param(5).squeeze(1) > 0.5f, greedy_tok, sampled);
  } else {
    tokens = sampled;
  }
  // Log-probabilities, batched by the distribution they are read from (raw; processed; processed
  // of a greedy row = log_softmax of the penalised logits), and sent back to the host in ONE
  // transfer together with the tokens: [tokens | per source: token logprob, top-k values, top-k
  // ids, tracked values].
  struct LpSource {
    std::vector<int64_t> rows;
    int64_t k = 0, tracked = 0, offset = 0;
  };
  LpSource src[3];
  for (int64_t r = 0; r < R; ++r) {
    const SamplingParams& p = *rows[static_cast<size_t>(r)].params;
    if (p.logprobs < 0 && p.tracked_token_ids.empty()) continue;
    LpSource& g = src[!p.processed_logprobs ? 0 : (p.temperature == 0.0f ? 2 : 1)];
    g.rows.push_back(r);
    g.k = std::max<int64_t>(g.k, std::max(0, p.logprobs));
    g.tracked = std::max<int64_t>(g.tracked, static_cast<int64_t>(p.tracked_token_ids.size()));
  }
  std::vector<at::Tensor> back{tokens.to(at::kFloat)};  // ids below 2^24: exact in float32
  int64_t offset = R;
  for (int s = 0; s < 3; ++s) {
    LpSource& g = src[s];
    if (g.rows.empty()) continue;
    const int64_t n = static_cast<int64_t>(g.rows.size());
    const at::Tensor idx = at::tensor(g.rows, i64).to(dev, /*non_blocking=*/true);
    const at::Tensor lp = s == 0 ? raw_lp.index_select(0, idx)
                                 : (s == 1 ? proc_lp.index_select(0, idx) : at::log_softmax(logits.index_select(0, idx), 1));
    std::vector<at::Tensor> cols{lp.gather(1, tokens.index_select(0, idx).unsqueeze(1))};
    if (g.k > 0) {
      auto t = lp.topk(g.k, 1);
      cols.push_back(std::get<0>(t));
      cols.push_back(std::get<1>(t).to(at::kFloat));
    }
    if (g.tracked > 0) {
      std::vector<int64_t> ids(static_cast<size_t>(n * g.tracked), 0);
      for (int64_t i = 0; i < n; ++i) {
        const auto& tr = rows[static_cast<size_t>(g.rows[i])].params->tracked_token_ids;
        std::copy(tr.begin(), tr.end(), ids.begin() + i * g.tracked);
      }
      cols.push_back(lp.gather(1, at::tensor(ids, i64).view({n, g.tracked}).to(dev, true)));
    }
    back.push_back(at::cat(cols, 1).reshape({-1}));
    g.offset = offset;
    offset += n * (1 + 2 * g.k + g.tracked);
  }
  const at::Tensor host = (back.size() == 1 ? back[0] : at::cat(back)).to(at::kCPU).contiguous();
  const float* v = host.data_ptr<float>();
  for (int64_t r = 0; r < R; ++r) out[static_cast<size_t>(r)].token = static_cast<int32_t>(v[r]);
  for (const LpSource& g : src) {
    const int64_t width = 1 + 2 * g.k + g.tracked;
    for (size_t i = 0; i < g.rows.size(); ++i) {
      const int64_t r = g.rows[i];
      const SamplingParams& p = *rows[static_cast<size_t>(r)].params;
      const float* row = v + g.offset + static_cast<int64_t>(i) * width;
      SampledToken& o = out[static_cast<size_t>(r)];
      o.has_logprobs = true;
      o.logprobs.token = o.token;
      o.logprobs.logprob = row[0];
      const int k = std::max(0, p.logprobs);
      for (int j = 0; j < k; ++j)
        o.logprobs.top.emplace_back(static_cast<int32_t>(row[1 + g.k + j]), row[1 + j]);
      o.logprobs.tracked.assign(row + 1 + 2 * g.k, row + 1 + 2 * g.k + p.tracked_token_ids.size());
    }
  }
  return out;
}

}  // namespace genprm
