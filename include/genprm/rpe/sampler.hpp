#pragma once
// Sampling solutions with step forcing: the first half of the RPE data pipeline (problems ->
// solutions -> Labeler -> labelled steps). Per problem ONE request with n samples of the chat
// prompt + `Step 1: ` (the prompt is computed once and forked); each solution is the step prefix
// + its completion, split into steps with split_steps, its final answer extracted and, when a
// ground truth is given, graded (grade.hpp).
//
// Generator concept and failure contract as in labeler.hpp: a request error finishes the problem
// with SampleResult::error set and no solutions.
#include <cstdint>
#include <functional>
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "genprm/gen/request.hpp"
#include "genprm/math/extract.hpp"
#include "genprm/rpe/config.hpp"
#include "genprm/rpe/grade.hpp"
#include "genprm/rpe/labeler.hpp"
#include "genprm/rpe/result.hpp"
#include "genprm/rpe/steps.hpp"
#include "genprm/util/error.hpp"
#include "genprm/util/in_flight.hpp"

namespace genprm::rpe {

struct SampleInput {
  std::string id;       ///< keys the request seed
  std::string problem;
  std::string answer;   ///< ground truth; empty: solutions are not graded
  std::string prompt;   ///< pre-rendered chat prompt; empty: the renderer's
};

template <typename Gen, typename Grader = MathGrader>
class SolutionSampler {
 public:
  using Callback = std::function<void(SampleResult)>;

  SolutionSampler(Gen& gen, PromptRenderer render, SamplerConfig cfg, Grader grader = {})
      : gen_(gen),
        render_(std::move(render)),
        cfg_(std::move(cfg)),
        grader_(std::move(grader)),
        flight_(static_cast<size_t>(std::max(cfg_.max_problems_in_flight, 1)),
                [this](uint64_t key, SampleInput in) { start_problem(key, std::move(in)); }) {
    cfg_.validate();
  }

  void submit(SampleInput input, Callback on_done) {
    GENPRM_CHECK_ARG(!input.prompt.empty() || (render_ && !input.problem.empty()),
                     "problem: '{}' has neither a problem text (with a chat renderer) nor a pre-rendered prompt",
                     input.id);
    flight_.submit(std::move(input), std::move(on_done));
  }

  bool poll() {
    if (idle()) return false;
    const bool progressed = gen_.poll();
    GENPRM_CHECK(progressed || pending_ == 0, "rpe sampler: {} requests outstanding but the generator is idle",
                 pending_);
    return !idle();
  }
  void run_until_idle() {
    while (poll()) {
    }
  }
  bool idle() const { return flight_.idle() && pending_ == 0; }

  /// Samples every input with up to max_problems_in_flight at once; results in input order.
  std::vector<SampleResult> sample_many(std::vector<SampleInput> inputs,
                                           const std::function<void(size_t, const SampleResult&)>& on_result = {}) {
    return run_all_in_order<SampleResult>(
        std::move(inputs), [this](SampleInput in, Callback cb) { submit(std::move(in), std::move(cb)); },
        [this] { run_until_idle(); }, on_result, "rpe sampler");
  }

 private:
  /// Begins a problem the in-flight queue admitted (in submission order): its one request.
  void start_problem(uint64_t key, SampleInput input) {
    auto in = std::make_shared<SampleInput>(std::move(input));
    SampleResult base_result;
    base_result.id = in->id;
    base_result.problem = in->problem;
    base_result.ground_truth = in->answer;
    GenerationRequest req;
    try {
      req.prompt_text = (in->prompt.empty() ? render_(in->problem) : in->prompt) + cfg_.step_prefix;
    } catch (const std::exception& e) {
      base_result.error = fmt::format("prompt: {}", e.what());
      flight_.finish(key, std::move(base_result));
      return;
    }
    req.n = cfg_.n;
    req.params.temperature = cfg_.rollout.temperature;
    req.params.top_p = cfg_.rollout.top_p;
    req.params.top_k = cfg_.rollout.top_k;
    req.params.max_tokens = cfg_.rollout.max_tokens;
    req.params.stop = cfg_.rollout.stop;
    if (cfg_.seed) req.params.seed = request_seed(*cfg_.seed, problem_key(in->id), 0, 0);
    ++pending_;
    gen_.submit(std::move(req), [this, in, key, r = std::move(base_result)](GenerationOutput out) mutable {
      --pending_;
      if (!out.error.empty() || static_cast<int>(out.samples.size()) != cfg_.n) {
        r.error = out.error.empty() ? fmt::format("expected {} samples, got {}", cfg_.n, out.samples.size())
                                    : out.error;
      } else {
        r.prompt_tokens = static_cast<long>(out.prompt_ids.size());
        r.cached_prompt_tokens = static_cast<long>(out.cached_prompt_tokens);
        for (auto& s : out.samples) r.solutions.push_back(make_solution(*in, s));
        if (!in->answer.empty() && !r.solutions.empty()) {
          const auto right = std::count_if(r.solutions.begin(), r.solutions.end(),
                                           [](const SampledSolution& s) { return s.correct; });
          r.pass_rate = static_cast<double>(right) / static_cast<double>(r.solutions.size());
        }
      }
      flight_.finish(key, std::move(r));  // admits the next problems, then calls back
    });
  }

  SampledSolution make_solution(const SampleInput& in, const SampleOutput& s) const {
    SampledSolution sol;
    sol.text = forced_solution(s.text, cfg_.step_prefix);
    sol.steps = split_steps(sol.text);
    if (auto ex = math::extract_answer(sol.text)) {
      sol.answer = ex->answer;
      sol.correct = !in.answer.empty() && grade_answer(grader_, *sol.answer, in.answer);
    }
    sol.finish_reason = s.finish_reason;
    sol.generated_tokens = static_cast<long>(s.token_ids.size());
    return sol;
  }

  Gen& gen_;
  PromptRenderer render_;
  SamplerConfig cfg_;
  Grader grader_;
  InFlight<SampleInput, SampleResult> flight_;  // admission, callbacks
  long pending_ = 0;
};

}  // namespace genprm::rpe
