// GenPRM end to end on the real engine, sandbox and tokenizer, with checkpoints written at test
// time (random weights; and a unigram model whose reward has a closed form).
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <string>

#include <ATen/Parallel.h>

#include "genprm/prm/genprm.hpp"
#include "random_checkpoint.hpp"

using namespace genprm;
using namespace genprm::prm;

namespace {

std::string temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("genprm_prm_engine_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d.string();
}

GenPRMOptions small_options(int majority) {
  GenPRMOptions o;
  o.verifier.majority = majority;
  o.verifier.max_tokens = 48;
  o.verifier.analyze_max_tokens = 12;
  o.verifier.round_limit = 2;
  o.verifier.max_fallbacks = 1;
  o.verifier.seed = 7;
  o.engine.kv_blocks = 2048;
  o.engine.block_size = 16;
  return o;
}

const SolutionInput kSolution{"e2e", "Compute 2+3.", {"2+3 = 5.", "So the answer is 5."}};

}  // namespace

TEST_CASE("random GenPRM: rewards in [0, 1], shared prompts computed once, steps reuse earlier KV") {
  at::set_num_threads(1);  // tiny model on a shared machine: OpenMP barriers only cost time
  const std::string dir = temp_dir("random");
  prmtest::CheckpointShape shape;
  prmtest::write_checkpoint(dir, shape, 1);
  GenPRM prm(dir, small_options(3));
  auto t0 = std::chrono::steady_clock::now();
  auto results = prm.verify_many({kSolution, SolutionInput{"b", "Is 7 prime?", {"Yes, 7 is prime."}}});
  MESSAGE("verify_many: " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s");
  REQUIRE(results.size() == 2);
  const SolutionResult& r = results[0];
  CHECK(r.error.empty());
  REQUIRE(r.value.size() == 2);
  for (const auto& step : r.steps) {
    CHECK(step.paths.size() == 3);
    for (const auto& p : step.paths) {
      CHECK(p.reward >= 0.0);
      CHECK(p.reward <= 1.0);
      CHECK(p.requests >= 2);
      CHECK(p.fallbacks == 1);  // random weights never write </output>: budget -> fallback
    }
    CHECK(step.reward >= 0.0);
    CHECK(step.reward <= 1.0);
  }
  // A path's own requests (the re-submitted whole prompts of its later stages) compute only the
  // text appended since its previous request (template + code output / fallback text, a few
  // dozen tokens), never the conversation prompt or its own earlier generations again.
  for (const auto& step : r.steps) {
    for (size_t i = 1; i < step.paths.size(); ++i) {
      const auto& p = step.paths[i];
      const long own = p.requests - 1;  // request 0 is the shared analyze request
      REQUIRE(own >= 1);
      CHECK(p.prompt_tokens > own * step.prompt_tokens);
      CHECK(p.prompt_tokens - p.cached_prompt_tokens <= own * 40);
    }
  }
  // Step t+1's prompt starts with step t's conversation prompt, which is found in the cache.
  // (Path 0's verification cannot be reused: the reference's step-t prompt has no
  // <｜Assistant｜> tag before <analyze>, while turn t in step t+1's prompt has one, so the
  // rationale's tokens sit one position later after a different token.)
  for (size_t t = 1; t < r.steps.size(); ++t) {
    const long opening = static_cast<long>(prm.tokenizer().encode(small_options(1).verifier.analyze_start(static_cast<int>(t))).size());
    CHECK(r.steps[t].cached_prompt_tokens >= r.steps[t - 1].prompt_tokens - opening - 1);
  }
  EngineStats st = prm.engine_stats();
  MESSAGE("prompt tokens submitted " << st.prompt_tokens_submitted << ", computed "
          << st.prompt_tokens_computed << ", cached " << st.prompt_tokens_cached);
  CHECK(st.preemptions == 0);
  CHECK(st.prompt_tokens_cached > 0);
  // Every stage re-submits the whole prompt; with the radix cache only appended text is
  // computed. Without reuse, computed == submitted.
  CHECK(st.prompt_tokens_computed * 4 < st.prompt_tokens_submitted);
  // The N rationales of a step share one prompt computation: the step's first request is
  // counted once in `submitted` although 4 paths use it.
  CHECK(st.prompt_tokens_computed + st.prompt_tokens_cached >= st.prompt_tokens_submitted);
  // JSON round trip.
  Json j = to_json(r);
  CHECK(Json::parse(j.dump())["value"].size() == 2);
}

TEST_CASE("unigram GenPRM: the reward read at the judgement position has its closed form") {
  at::set_num_threads(1);
  const std::string dir = temp_dir("unigram");
  prmtest::CheckpointShape shape;
  shape.layers = 1;
  shape.hidden_size = 32;
  shape.intermediate_size = 32;
  Tokenizer tok = Tokenizer::from_pretrained(std::string(GENPRM_TEST_DATA) + "/r1distill_tokenizer");
  const int32_t brace = tok.encode("{").at(0), yes = 9454, no = 2753;
  const double ly = std::log(3.0), ln = 0.0, lb = 1.0;
  prmtest::write_checkpoint(dir, shape, 2, {{brace, static_cast<float>(lb)}, {yes, static_cast<float>(ly)},
                                            {no, static_cast<float>(ln)}});
  for (bool processed : {true, false}) {
    GenPRMOptions o = small_options(6);
    o.verifier.mode = VerifyMode::cot;
    o.verifier.processed_logprobs = processed;
    GenPRM prm(dir, o);
    SolutionResult r = prm.verify(kSolution);
    // vLLM V0 (processed, temperature 0.6): 1 / (1 + 3^(-1/0.6)); raw: 3 / 4.
    const double expect = processed ? 1.0 / (1.0 + std::pow(3.0, -1.0 / 0.6)) : 0.75;
    int found = 0;
    for (const auto& step : r.steps) {
      for (const auto& p : step.paths) {
        if (p.judgement_found) {
          ++found;
          CHECK(p.reward == doctest::Approx(expect).epsilon(1e-3));
        } else {
          CHECK(p.reward == 0.5);
        }
      }
    }
    MESSAGE("processed=" << processed << ": " << found << " of 12 paths wrote a judgement");
    CHECK(found > 0);
  }
}
