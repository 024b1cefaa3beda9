// GenPRM Maj@N verification of one S-step solution with a random model: our verifier on the
// engine (radix prefix cache, n = N requests, paths advancing concurrently in one batch) vs a
// baseline with the reference's call pattern (each path generated separately, one request at a
// time, every stage re-submitting the whole prompt with no cache reuse). Both run the same
// verifier logic, budgets and seeds, so the generated token counts match; prints wall time,
// prompt tokens computed, all tokens computed, and the ratios.
//
//   bench_genprm [--shape tiny|1.5b] [--device cpu|cuda] [--dtype float32|bfloat16]
//                [--steps 10] [--majority 8] [--max-tokens 96] [--analyze-max-tokens 32]
//                [--skip-baseline]
// Random weights never write a stop string, so every analyze stage runs to its budget and the
// output fallback always follows; --analyze-max-tokens keeps the CPU run short.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "genprm/engine/engine.hpp"
#include "genprm/io/random_checkpoint.hpp"
#include "genprm/prm/genprm.hpp"

using namespace genprm;
using namespace genprm::prm;
using Clock = std::chrono::steady_clock;

namespace {

struct Shape {
  int64_t vocab = 151936, hidden = 64, inter = 128, layers = 2, heads = 4, kv_heads = 2;
};

Shape shape_named(const std::string& s) {
  if (s == "tiny") return Shape{};
  if (s == "1.5b") return Shape{151936, 1536, 8960, 28, 12, 2};  // DeepSeek-R1-Distill-Qwen-1.5B
  throw ValueError("--shape must be tiny or 1.5b, got " + s);
}

Qwen2Model random_model(const Shape& s, at::Device dev, at::ScalarType dtype) {
  ModelConfig c;
  c.vocab_size = s.vocab;
  c.hidden_size = s.hidden;
  c.intermediate_size = s.inter;
  c.num_hidden_layers = s.layers;
  c.num_attention_heads = s.heads;
  c.num_key_value_heads = s.kv_heads;
  c.head_dim = s.hidden / s.heads;
  c.max_position_embeddings = 131072;
  c.rope_theta = 10000.0;
  c.eos_token_ids = {151643};
  RandomWeightsOptions o;
  o.device = dev;
  o.dtype = dtype;
  return Qwen2Model::from_tensors(c, random_qwen2_weights(c, o), dev, dtype);
}

/// The reference's call pattern over an engine without prefix caching: requests run one at a
/// time to completion, a request for n samples runs as n separate requests.
struct SequentialGenerator {
  Engine& engine;
  std::deque<std::pair<GenerationRequest, GenerationCallback>> queue;
  uint64_t next = 1;

  uint64_t submit(GenerationRequest req, GenerationCallback cb) {
    queue.emplace_back(std::move(req), std::move(cb));
    return next++;
  }
  bool poll() {
    if (queue.empty()) return false;
    auto [req, cb] = std::move(queue.front());
    queue.pop_front();
    GenerationOutput merged;
    for (int i = 0; i < req.n; ++i) {
      GenerationRequest one = req;
      one.n = 1;
      if (one.params.seed) one.params.seed = *one.params.seed + static_cast<uint64_t>(i);
      GenerationOutput o = engine.generate({one}).at(0);
      merged.prompt_ids = o.prompt_ids;
      merged.error = o.error;
      merged.samples.push_back(std::move(o.samples.at(0)));
    }
    cb(std::move(merged));
    return true;
  }
};

struct Run {
  double seconds = 0;
  EngineStats stats;
  SolutionResult result;
};

void print_run(const char* label, const Run& r) {
  std::printf("%s: %8.2f s  prompt tokens submitted %8llu computed %8llu  all tokens computed %8llu  generated %7llu\n",
              label, r.seconds, (unsigned long long)r.stats.prompt_tokens_submitted,
              (unsigned long long)r.stats.prompt_tokens_computed, (unsigned long long)r.stats.tokens_computed,
              (unsigned long long)r.stats.generated_tokens);
}

template <typename Gen>
Run run_one(Gen& gen, Engine& engine, LazySandbox& sandbox, const Tokenizer& tok, const VerifierConfig& cfg,
            const SolutionInput& input) {
  Verifier<Gen, LazySandbox> v(gen, sandbox, make_tokenizer_ops(tok), cfg);
  Run r;
  const EngineStats before = engine.stats();
  auto t0 = Clock::now();
  r.result = v.verify(input);
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.stats = engine.stats();
  r.stats.prompt_tokens_computed -= before.prompt_tokens_computed;
  r.stats.prompt_tokens_submitted -= before.prompt_tokens_submitted;
  r.stats.tokens_computed -= before.tokens_computed;
  r.stats.generated_tokens -= before.generated_tokens;
  r.stats.prompt_tokens_cached -= before.prompt_tokens_cached;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape_name = "tiny", device = "cpu", dtype = "float32";
  int steps = 10, majority = 8, max_tokens = 96, analyze_max = 32;
  bool skip_baseline = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw ValueError(a + " needs a value");
      return argv[++i];
    };
    if (a == "--shape") shape_name = next();
    else if (a == "--device") device = next();
    else if (a == "--dtype") dtype = next();
    else if (a == "--steps") steps = std::stoi(next());
    else if (a == "--majority") majority = std::stoi(next());
    else if (a == "--max-tokens") max_tokens = std::stoi(next());
    else if (a == "--analyze-max-tokens") analyze_max = std::stoi(next());
    else if (a == "--skip-baseline") skip_baseline = true;
    else throw ValueError("unknown argument " + a);
  }
  const at::Device dev = parse_device(device);
  const at::ScalarType dt = parse_dtype(dtype);
  if (dev.is_cpu()) at::set_num_threads(std::max(1, at::get_num_threads()));
  at::manual_seed(0);
  Qwen2Model model = random_model(shape_named(shape_name), dev, dt);
  Tokenizer tok = Tokenizer::from_pretrained(std::string(GENPRM_SOURCE_DIR) + "/tests/data/r1distill_tokenizer");

  VerifierConfig cfg;
  cfg.majority = majority;
  cfg.max_tokens = max_tokens;
  cfg.analyze_max_tokens = analyze_max;
  cfg.seed = 1234;
  cfg.max_fallbacks = 1;
  SolutionInput input{"bench", "Jo adds up all the positive integers from 1 to 100. Kate rounds every integer to "
                               "its nearest multiple of 10 and adds the 100 values. What is the positive difference "
                               "between Jo's sum and Kate's sum?", {}};
  for (int s = 0; s < steps; ++s)
    input.steps.push_back("Step " + std::to_string(s + 1) + ": we compute the partial sum of the block " +
                          std::to_string(10 * s + 1) + " to " + std::to_string(10 * s + 10) +
                          " and compare the rounded values, which gives " + std::to_string(55 + 100 * s) + ".");

  EngineOptions eo;
  eo.kv_blocks = 8192;
  eo.block_size = 16;
  SandboxOptions so;
  std::printf("bench_genprm: Maj@%d, %d steps, shape %s, %s %s, max_tokens %d, analyze %d\n", majority, steps,
              shape_name.c_str(), device.c_str(), dtype.c_str(), max_tokens, analyze_max);

  Engine ours_engine(model, text_codec(tok), eo);
  LazySandbox sb1(so);
  Run ours = run_one(ours_engine, ours_engine, sb1, tok, cfg, input);
  print_run("ours     ", ours);
  if (skip_baseline) return 0;

  EngineOptions bo = eo;
  bo.prefix_caching = false;
  Engine base_engine(model, text_codec(tok), bo);
  SequentialGenerator seq{base_engine};
  LazySandbox sb2(so);
  Run base = run_one(seq, base_engine, sb2, tok, cfg, input);
  print_run("baseline ", base);
  std::printf("ratio (baseline / ours): wall time %.2fx, prompt tokens computed %.2fx, all tokens computed %.2fx\n",
              base.seconds / ours.seconds,
              double(base.stats.prompt_tokens_computed) / double(std::max<uint64_t>(1, ours.stats.prompt_tokens_computed)),
              double(base.stats.tokens_computed) / double(std::max<uint64_t>(1, ours.stats.tokens_computed)));
  return 0;
}
