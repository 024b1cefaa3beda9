// Model-level step times of Qwen2Model::forward on a random model (no engine, no sampler beyond
// an argmax copied to the host each step, as a greedy engine would).
//   bench_model [--shape small|r1-1.5b] [--device cpu|cuda] [--dtype float32|bfloat16|float16]
// Prints prefill tokens/s (one sequence through the paged path, and forward_full beside it) and
// decode steps/s and tokens/s at several batch sizes over a cached context, with the weight-read
// roofline of a decode step (weight bytes / --bandwidth-tbps; on CUDA by default the H200 copy
// bandwidth of tests/data/hf_h200_anchors.json) and, on CUDA, the HF anchors as the peer figures.
// The "queued" figure repeats the steps without the per-step host copy: when it equals the synced
// one, ATen's per-op host dispatch, not the device, bounds the step.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "bench_shapes.hpp"
#include "genprm/io/random_checkpoint.hpp"
#include "genprm/model/device.hpp"
#include "genprm/model/qwen2.hpp"
#include "genprm/util/json.hpp"

using namespace genprm;

namespace {

RandomWeightsOptions weight_options(at::Device dev, at::ScalarType dt) {
  RandomWeightsOptions o;
  o.embed_stddev = 1.0;  // unit-scale embeddings, every other weight ~ N(0, 0.02)
  o.device = dev;
  o.dtype = dt;
  return o;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// S sequences each with `ctx` cached tokens, blocks laid out one sequence after another.
ForwardBatch decode_batch(int64_t seqs, int64_t ctx, int64_t bs, int64_t vocab, at::Device dev) {
  const int64_t nblk = (ctx + 1 + bs - 1) / bs;
  ForwardBatch b;
  b.token_ids = at::randint(vocab, {seqs}, at::kLong).to(dev);
  b.positions = at::full({seqs}, ctx, at::kLong).to(dev);
  b.block_tables = at::arange(seqs * nblk, at::kLong).view({seqs, nblk}).to(dev);
  b.slot_mapping = (at::arange(seqs, at::kLong) * nblk * bs + ctx).to(dev);
  b.logits_indices = at::arange(seqs, at::kLong).to(dev);
  for (int64_t s = 0; s <= seqs; ++s) b.query_start.push_back(s);
  b.context_lens.assign(static_cast<size_t>(seqs), ctx + 1);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape = "small", device = "cpu", dtype = "float32";
  double bandwidth_tbps = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--shape") shape = v;
    else if (k == "--device") device = v;
    else if (k == "--dtype") dtype = v;
    else if (k == "--bandwidth-tbps") bandwidth_tbps = std::stod(v);
    else { std::fprintf(stderr, "unknown option %s\n", k.c_str()); return 2; }
  }
  const Json anchors = read_json_file(std::string(GENPRM_SOURCE_DIR) + "/tests/data/hf_h200_anchors.json");
  const bool bandwidth_given = bandwidth_tbps > 0;
  if (!bandwidth_given) bandwidth_tbps = anchors.at("d2d_copy_TBps_read_plus_write").get<double>();
  c10::InferenceMode guard;
  const at::Device dev = parse_device(device);
  const at::ScalarType dt = parse_dtype(dtype);
  const ModelConfig cfg = bench_shape_config(shape, "bench_model");
  const Qwen2Model model = Qwen2Model::from_tensors(cfg, random_qwen2_weights(cfg, weight_options(dev, dt)), dev, dt);
  const bool big = shape == "r1-1.5b";
  const double weight_bytes = double(model.num_parameters()) * double(c10::elementSize(dt));
  std::printf("bench_model: %s, %.1f M parameters, %s, %s\n", shape.c_str(), model.num_parameters() / 1e6,
              dev.str().c_str(), dtype_name(dt).c_str());
  const int64_t bs = 16;
  const int64_t ctx = big ? 1024 : 256;
  const std::vector<int64_t> batches = big ? std::vector<int64_t>{1, 8, 64} : std::vector<int64_t>{1, 8, 32};
  const int64_t max_b = batches.back();
  KvCacheView kv = model.allocate_kv(max_b * ((ctx + 1 + bs - 1) / bs) + 8, bs);
  auto sync = [&](const at::Tensor& logits) { return logits.argmax(-1).cpu(); };  // host copy per step

  // Prefill: one sequence, paged path, and the contiguous reference path beside it.
  {
    const int64_t P = big ? 4096 : 1024;
    const int64_t nblk = (P + bs - 1) / bs;
    ForwardBatch b;
    b.token_ids = at::randint(cfg.vocab_size, {P}, at::kLong).to(dev);
    b.positions = at::arange(P, at::kLong).to(dev);
    b.slot_mapping = at::arange(P, at::kLong).to(dev);
    b.block_tables = at::arange(nblk, at::kLong).view({1, nblk}).to(dev);
    b.logits_indices = at::full({1}, P - 1, at::kLong).to(dev);
    b.query_start = {0, P};
    b.context_lens = {P};
    KvCacheView pkv = model.allocate_kv(nblk, bs);
    sync(model.forward(b, pkv));
    const int reps = big ? 5 : 2;
    double t0 = now();
    for (int r = 0; r < reps; ++r) sync(model.forward(b, pkv));
    const double paged = (now() - t0) / reps;
    sync(model.forward_full(b.token_ids));
    t0 = now();
    for (int r = 0; r < reps; ++r) sync(model.forward_full(b.token_ids));
    const double full = (now() - t0) / reps;
    std::printf("prefill %lld tokens: paged %.0f tok/s, forward_full %.0f tok/s (paged/full %.2f)", (long long)P,
                P / paged, P / full, full / paged);
    if (dev.is_cuda())
      std::printf(", HF anchor %.0f tok/s (ratio %.2f)", anchors.at("hf_prefill_4096_tok_per_s").get<double>(),
                  P / paged / anchors.at("hf_prefill_4096_tok_per_s").get<double>());
    std::printf("\n");
  }
  // Decode steps over `ctx` cached tokens.
  for (int64_t B : batches) {
    ForwardBatch b = decode_batch(B, ctx, bs, cfg.vocab_size, dev);
    for (int w = 0; w < 3; ++w) sync(model.forward(b, kv));
    const int steps = big ? 50 : (B >= 32 ? 10 : 20);
    const double t0 = now();
    for (int s = 0; s < steps; ++s) sync(model.forward(b, kv));
    const double step = (now() - t0) / steps;
    const double roof = weight_bytes / (bandwidth_tbps * 1e12);
    // The same steps queued without the per-step host copy: equal times mean the host (ATen
    // dispatch of every op) is the bottleneck, not the device.
    const double t1 = now();
    at::Tensor last;
    for (int s = 0; s < steps; ++s) last = model.forward(b, kv);
    sync(last);
    const double queued = (now() - t1) / steps;
    std::printf("decode batch %3lld, context %lld: %.3f ms/step (%.3f queued without host copy), %.0f steps/s, "
                "%.0f tok/s",
                (long long)B, (long long)ctx, step * 1e3, queued * 1e3, 1 / step, B / step);
    if (dev.is_cuda() || bandwidth_given)
      std::printf("; weight-read roofline %.3f ms/step at %.2f TB/s (%.0f%% of it)", roof * 1e3, bandwidth_tbps,
                  100 * roof / step);
    std::printf("\n");
  }
  if (dev.is_cuda())
    std::printf("HF anchors (H200, generate incl. prefill): b1 %.0f tok/s (compiled static %.0f), 8 samples %.0f "
                "(compiled %.0f), b64 %.0f tok/s\n",
                anchors["hf_b1_greedy"]["gen_tok_per_s"].get<double>(),
                anchors["hf_compiled_static_b1_greedy"]["gen_tok_per_s"].get<double>(),
                anchors["hf_maj8_sample"]["gen_tok_per_s"].get<double>(),
                anchors["hf_compiled_static_maj8_sample"]["gen_tok_per_s"].get<double>(),
                anchors["hf_b64_sample"]["gen_tok_per_s"].get<double>());
  return 0;
}
