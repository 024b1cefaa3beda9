// Engine throughput on a random Qwen2 model.
//   bench_engine [--shape nano|small|r1-1.5b] [--device cpu|cuda] [--dtype float32|bfloat16|float16]
//                [--model DIR] [--via-writer] [--quick] [--decode-graphs auto|off|static]
//                [--compare-graphs]
// small (default, CPU): ~33 M parameters, decode tokens/s at batch 1, 8, 32 (64-token prompts,
// 32 new), prefill tokens/s (1024 tokens), and "8 samples of one 1000-token prompt": prompt
// tokens computed with sharing (n = 8, prefix cache) vs without (8 requests, no prefix cache).
// r1-1.5b (DeepSeek-R1-Distill-Qwen-1.5B shape, for the GPU): batch 1 (512 prompt, 256 new,
// greedy), 8 samples of one 1024-token prompt (256 new), batch 64 (512 prompt, 128 new), prefill
// 4096 tokens, beside the HF figures of tests/data/hf_h200_anchors.json (stored peers measured on
// an H200; a ratio is only meaningful on that card). tok/s = generated tokens / wall time of the
// whole generate call, prefill included (as the anchors).
// --compare-graphs (r1-1.5b): batch 1 and batch 64 again with decode graphs off, in the same run,
// and the ratios (engine/decode_graphs.hpp).
// nano (CPU): the engine's host work per decode step (scheduling + batch building, and the
// bookkeeping after sampling) at batch 1 and 256, beside the forward and sampling time per step.
// The last line is machine-readable: BENCH_ENGINE {json}.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "bench_shapes.hpp"
#include "genprm/engine/engine.hpp"
#include "genprm/util/fs.hpp"
#include "genprm/io/model_config.hpp"
#include "genprm/io/random_checkpoint.hpp"
#include "genprm/model/device.hpp"
#include "genprm/util/json.hpp"

using namespace genprm;

namespace {

RandomWeightsOptions weight_options(at::Device dev, at::ScalarType dt) {
  RandomWeightsOptions o;
  o.seed = 0;
  o.device = dev;
  o.dtype = dt;
  return o;
}

std::vector<int32_t> random_prompt(size_t n, int64_t vocab, uint64_t salt) {
  std::vector<int32_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<int32_t>(splitmix64(salt * 1000003 + i) % static_cast<uint64_t>(vocab));
  return p;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Run {
  double seconds = 0;
  uint64_t generated = 0;
  uint64_t prompt_computed = 0;
  EngineStats delta;  ///< stats of this run alone (counters and host times)
  double tok_s() const { return static_cast<double>(generated) / seconds; }
  /// Microseconds per forward step of one host-time component.
  double us_per_step(double seconds_total) const {
    return delta.forward_steps ? 1e6 * seconds_total / static_cast<double>(delta.forward_steps) : 0.0;
  }
};

// Generates `batch` requests (distinct prompts unless n > 1) and times the whole call.
Run run(Engine& eng, size_t batch, size_t prompt_len, int new_tokens, int n, bool greedy, uint64_t salt) {
  std::vector<GenerationRequest> reqs;
  for (size_t b = 0; b < batch; ++b) {
    GenerationRequest r;
    r.prompt_ids = random_prompt(prompt_len, eng.model().config().vocab_size, salt + b);
    r.n = n;
    r.params.temperature = greedy ? 0.0f : 0.6f;
    r.params.top_p = greedy ? 1.0f : 0.95f;
    r.params.top_k = greedy ? 0 : 20;
    r.params.max_tokens = new_tokens;
    r.params.ignore_eos = true;
    r.params.seed = salt + b;
    reqs.push_back(std::move(r));
  }
  EngineStats before = eng.stats();
  double t0 = now_s();
  auto outs = eng.generate(std::move(reqs));
  double t1 = now_s();
  EngineStats after = eng.stats();
  for (auto& o : outs) GENPRM_CHECK(o.error.empty(), "bench_engine: request failed: {}", o.error);
  Run r;
  r.seconds = t1 - t0;
  r.generated = after.generated_tokens - before.generated_tokens;
  r.prompt_computed = after.prompt_tokens_computed - before.prompt_tokens_computed;
  r.delta.forward_steps = after.forward_steps - before.forward_steps;
  r.delta.schedule_seconds = after.schedule_seconds - before.schedule_seconds;
  r.delta.forward_seconds = after.forward_seconds - before.forward_seconds;
  r.delta.sample_seconds = after.sample_seconds - before.sample_seconds;
  r.delta.bookkeeping_seconds = after.bookkeeping_seconds - before.bookkeeping_seconds;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape = "small", device = "cpu", dtype = "float32", model_dir;
  bool via_writer = false, quick = false, compare_graphs = false;
  DecodeGraphMode graphs = DecodeGraphMode::Auto;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw ValueError("bench_engine: " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--shape") shape = next();
    else if (a == "--device") device = next();
    else if (a == "--dtype") dtype = next();
    else if (a == "--model") model_dir = next();
    else if (a == "--via-writer") via_writer = true;
    else if (a == "--quick") quick = true;
    else if (a == "--decode-graphs") graphs = parse_enum(next(), static_cast<DecodeGraphMode*>(nullptr));
    else if (a == "--compare-graphs") compare_graphs = true;
    else throw ValueError("bench_engine: unknown argument " + a);
  }
  const at::Device dev = parse_device(device);
  const at::ScalarType dt = parse_dtype(dtype);
  const bool big = shape == "r1-1.5b";
  if (shape != "r1-1.5b" && model_dir.empty()) via_writer = true;  // CPU default: the project's writer

  double t0 = now_s();
  std::unique_ptr<Qwen2Model> model;
  std::string tmp_dir;
  if (!model_dir.empty()) {
    model = std::make_unique<Qwen2Model>(Qwen2Model::load(model_dir, dev, dt));
  } else {
    ModelConfig cfg = bench_shape_config(shape, "bench_engine");
    if (via_writer) {
      tmp_dir = (std::filesystem::temp_directory_path() / ("genprm_bench_" + shape)).string();
      write_random_qwen2_checkpoint(tmp_dir, cfg, weight_options(at::kCPU, at::kFloat));
      model = std::make_unique<Qwen2Model>(Qwen2Model::load(tmp_dir, dev, dt));
    } else {
      model = std::make_unique<Qwen2Model>(Qwen2Model::from_tensors(cfg, random_qwen2_weights(cfg, weight_options(dev, dt)), dev, dt));
    }
  }
  std::printf("model: shape %s, %.1f M parameters, device %s, dtype %s, built in %.1f s%s\n", shape.c_str(),
              static_cast<double>(model->num_parameters()) / 1e6, device.c_str(), dtype_name(dt).c_str(), now_s() - t0,
              tmp_dir.empty() ? "" : (" (written and loaded via " + tmp_dir + ")").c_str());

  EngineOptions o;
  o.block_size = 16;
  o.kv_blocks = big ? 4096 : 2048;
  o.max_batch_tokens = big ? 8192 : 2048;
  o.decode_graphs = graphs;
  Engine eng(*model, {}, o);
  {
    const EngineStats g = eng.stats();
    std::printf("decode graphs: mode %s, %lld buckets, %s, set up in %.2f s, %.1f MiB\n", enum_name(graphs),
                static_cast<long long>(g.graph_buckets), g.graphs_captured ? "captured" : "not captured",
                g.graph_capture_seconds, static_cast<double>(g.graph_capture_bytes) / (1 << 20));
  }
  run(eng, 2, 32, 4, 1, true, 999);  // warm-up

  Json res;
  res["shape"] = shape;
  res["device"] = device;
  res["dtype"] = dtype_name(dt);
  res["params"] = model->num_parameters();
  auto report = [&](const std::string& key, const Run& r, const char* what) {
    std::printf("%-28s %10.1f tok/s  (%llu tokens in %.2f s; %s)\n", key.c_str(), r.tok_s(),
                static_cast<unsigned long long>(r.generated), r.seconds, what);
    res[key + "_tok_s"] = r.tok_s();
  };
  if (shape == "nano") {
    // Host work per step; the first steps (prefill) are a small share of 128 / 64 decode steps.
    auto host = [&](const std::string& key, const Run& r) {
      const double sched = r.us_per_step(r.delta.schedule_seconds), book = r.us_per_step(r.delta.bookkeeping_seconds);
      std::printf("%-10s host %7.1f us/step (schedule %.1f + bookkeeping %.1f); forward %.1f, sampling %.1f us/step; "
                  "%llu steps\n", key.c_str(), sched + book, sched, book, r.us_per_step(r.delta.forward_seconds),
                  r.us_per_step(r.delta.sample_seconds), static_cast<unsigned long long>(r.delta.forward_steps));
      res[key + "_host_us_per_step"] = sched + book;
      res[key + "_schedule_us_per_step"] = sched;
      res[key + "_bookkeeping_us_per_step"] = book;
      res[key + "_forward_us_per_step"] = r.us_per_step(r.delta.forward_seconds);
      res[key + "_sample_us_per_step"] = r.us_per_step(r.delta.sample_seconds);
    };
    const int scale = quick ? 4 : 1;
    host("batch_1", run(eng, 1, 16, 128 / scale, 1, true, 1));
    host("batch_256", run(eng, 256, 16, 64 / scale, 1, false, 100));
    std::printf("targets: host <= 100 us/step at batch 1, <= 1000 us/step at batch 256\n");
  } else if (big) {
    const int scale = quick ? 4 : 1;
    Run b1 = run(eng, 1, 512, 256 / scale, 1, true, 1);
    report("decode_b1", b1, "batch 1, prompt 512, greedy");
    Run m8 = run(eng, 1, 1024, 256 / scale, 8, false, 2);
    report("decode_maj8", m8, "8 samples of one 1024-token prompt, n = 8");
    Run b64 = run(eng, 64, 512, 128 / scale, 1, false, 100);
    report("decode_b64", b64, "64 prompts of 512");
    Run pf = run(eng, 1, 4096, 1, 1, true, 7);
    double prefill = 4096.0 / pf.seconds;
    std::printf("%-28s %10.1f tok/s  (4096-token prompt, one new token)\n", "prefill_4096", prefill);
    res["prefill_4096_tok_s"] = prefill;
    std::printf("steps over decode graphs: %llu of %llu decode steps\n",
                static_cast<unsigned long long>(eng.stats().graph_steps),
                static_cast<unsigned long long>(eng.stats().decode_steps));
    if (compare_graphs) {
      EngineOptions off = o;
      off.decode_graphs = DecodeGraphMode::Off;
      Engine eager(*model, {}, off);
      run(eager, 2, 32, 4, 1, true, 999);  // warm-up
      Run e1 = run(eager, 1, 512, 256 / scale, 1, true, 1);
      report("decode_b1_graphs_off", e1, "batch 1, decode graphs off");
      Run e64 = run(eager, 64, 512, 128 / scale, 1, false, 100);
      report("decode_b64_graphs_off", e64, "64 prompts of 512, decode graphs off");
      std::printf("decode graphs on / off (same run): batch 1 %.2fx, batch 64 %.2fx\n", b1.tok_s() / e1.tok_s(),
                  b64.tok_s() / e64.tok_s());
      res["ratio_b1_graphs_on_off"] = b1.tok_s() / e1.tok_s();
      res["ratio_b64_graphs_on_off"] = b64.tok_s() / e64.tok_s();
    }
    // Stored peers (HF generate on one H200): ratios are meaningful only on that card.
    try {
      Json a = read_json_file(std::string(GENPRM_SOURCE_DIR) + "/tests/data/hf_h200_anchors.json");
      double hb1 = a["hf_b1_greedy"]["gen_tok_per_s"], hm8 = a["hf_maj8_sample"]["gen_tok_per_s"];
      double hb64 = a["hf_b64_sample"]["gen_tok_per_s"], hpf = a["hf_prefill_4096_tok_per_s"];
      double cb1 = a["hf_compiled_static_b1_greedy"]["gen_tok_per_s"], cm8 = a["hf_compiled_static_maj8_sample"]["gen_tok_per_s"];
      std::printf("vs HF anchors (H200): b1 %.2fx eager / %.2fx compiled, maj8 %.2fx eager / %.2fx compiled, "
                  "b64 %.2fx eager, prefill %.2fx\n", b1.tok_s() / hb1, b1.tok_s() / cb1, m8.tok_s() / hm8,
                  m8.tok_s() / cm8, b64.tok_s() / hb64, prefill / hpf);
      res["ratio_b1_vs_hf_eager"] = b1.tok_s() / hb1;
      res["ratio_b1_vs_hf_compiled"] = b1.tok_s() / cb1;
      res["ratio_maj8_vs_hf_compiled"] = m8.tok_s() / cm8;
      res["ratio_b64_vs_hf_eager"] = b64.tok_s() / hb64;
      res["ratio_prefill_vs_hf"] = prefill / hpf;
    } catch (const std::exception& e) {
      std::printf("(anchors not read: %s)\n", e.what());
    }
  } else {
    const int new_tokens = quick ? 8 : 32;
    Run b1 = run(eng, 1, 64, new_tokens, 1, true, 1);
    report("decode_b1", b1, "batch 1, prompt 64, greedy");
    Run b8 = run(eng, 8, 64, new_tokens, 1, false, 10);
    report("decode_b8", b8, "8 prompts of 64");
    Run b32 = run(eng, 32, 64, new_tokens, 1, false, 100);
    report("decode_b32", b32, "32 prompts of 64");
    std::printf("batching speed-up (same run): b8 / b1 = %.2fx, b32 / b1 = %.2fx\n", b8.tok_s() / b1.tok_s(),
                b32.tok_s() / b1.tok_s());
    Run pf = run(eng, 1, 1024, 1, 1, true, 7);
    double prefill = 1024.0 / pf.seconds;
    std::printf("%-28s %10.1f tok/s  (1024-token prompt)\n", "prefill_1024", prefill);
    res["prefill_1024_tok_s"] = prefill;
    res["speedup_b8_vs_b1"] = b8.tok_s() / b1.tok_s();
    res["speedup_b32_vs_b1"] = b32.tok_s() / b1.tok_s();
  }
  // 8 samples of one 1000-token prompt: prompt tokens computed with sharing vs without.
  if (shape != "nano") {
    const int new_tokens = quick ? 4 : 16;
    Run shared = run(eng, 1, 1000, new_tokens, 8, false, 5000);
    EngineOptions o2 = o;
    o2.prefix_caching = false;
    Engine plain(*model, {}, o2);
    std::vector<GenerationRequest> reqs;
    for (int i = 0; i < 8; ++i) {
      GenerationRequest r;
      r.prompt_ids = random_prompt(1000, model->config().vocab_size, 5000);
      r.params.temperature = 0.6f;
      r.params.top_p = 0.95f;
      r.params.top_k = 20;
      r.params.max_tokens = new_tokens;
      r.params.ignore_eos = true;
      r.params.seed = 5000;
      reqs.push_back(r);
    }
    double s0 = now_s();
    plain.generate(reqs);
    double s1 = now_s();
    uint64_t unshared = plain.stats().prompt_tokens_computed;
    std::printf("8 samples of one 1000-token prompt: prompt tokens computed %llu with sharing vs %llu without "
                "(%.1fx less); wall %.2f s vs %.2f s\n", static_cast<unsigned long long>(shared.prompt_computed),
                static_cast<unsigned long long>(unshared),
                static_cast<double>(unshared) / static_cast<double>(shared.prompt_computed), shared.seconds, s1 - s0);
    res["maj8_prompt_tokens_computed_shared"] = shared.prompt_computed;
    res["maj8_prompt_tokens_computed_unshared"] = unshared;
    res["maj8_shared_s"] = shared.seconds;
    res["maj8_unshared_s"] = s1 - s0;
  }
  EngineStats st = eng.stats();
  std::printf("host time split (whole run): schedule %.3f s, forward call %.3f s, sampling+sync %.3f s over %llu steps\n",
              st.schedule_seconds, st.forward_seconds, st.sample_seconds,
              static_cast<unsigned long long>(st.forward_steps));
  res["schedule_s"] = st.schedule_seconds;
  res["forward_call_s"] = st.forward_seconds;
  res["sample_sync_s"] = st.sample_seconds;
  res["forward_steps"] = st.forward_steps;
  res["preemptions"] = st.preemptions;
  res["max_batch_seqs"] = st.max_batch_seqs;
  std::printf("BENCH_ENGINE %s\n", res.dump().c_str());
  if (!tmp_dir.empty()) remove_tree(tmp_dir);
  return 0;
}
