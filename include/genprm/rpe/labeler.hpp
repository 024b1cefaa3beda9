#pragma once
// The RPE labeler: Monte Carlo estimates of every step of a solution, then the labels of
// labels.hpp. Templated on a Generator (engine::Engine, a scripted double) and a Grader
// (grade.hpp; math::compare by default).
//
// Per problem (problem, steps, ground-truth answer):
//  1. MC(s_1): rollouts from the chat prompt + the step prefix (`Step 1: `). A first request of
//     first_k samples (fixed_k when set, else k_rule's smallest K, 32); while the rule asks for
//     more rollouts than were taken (K(correct / taken) > taken) one more request tops up to
//     that K (same prompt: its KV is cached). MC(s_1) = correct / taken over all of them;
//     K = K(MC(s_1)) (or fixed_k) for the steps.
//  2. Then, all at once, ONE request per step t < T with n = K from the prompt + the steps through
//     t and the header of step t+1 (rollout_prefix, the reference's form), so the K completions
//     share the prefix's KV and step t+1 finds step t's prefix cached. A rollout is correct when
//     the final answer of (prefix text + completion) equals the ground truth. The last step T is
//     graded from its own answer (the whole solution), without rollouts.
//  3. When a step comes back with MC = 0 the requests of later steps are cancelled
//     (cancel_after_zero): their MC is 0 by propagation whatever they would estimate, and they
//     are reported with estimated = false, so results do not depend on timing.
//  4. labels.hpp's compute_labels turns (MC(s_1), MC(s_t, a_t)) into RPE / hard / difference
//     labels.
// Adaptive Monte Carlo (LabelerConfig::adaptive, off by default; the tests in adaptive.hpp): every
// estimate draws rounds of `round` rollouts, each round a piece of the fixed scheme's request
// (same seed, SamplingParams::first_sample = rollouts taken so far; MC(s_1)'s rounds never cross
// the end of one of its fixed requests). MC(s_1) stops where the fixed scheme stops or once its
// K bucket is decided. Every step's first round is submitted at once; a step is checked when its
// round is back and the step before it is final (its MC(s_t) is then known, so the result does
// not depend on timing), and draws its next round only when its label is still open and it has
// fewer than K. A step with no right rollout is final as a zero: later steps stop (cancelled
// rounds with cancel_after_zero).
// share_first (off by default): MC(s_1) depends only on the problem, so rows with the same chat
// prompt share one estimate; the first admitted row makes it (seeded from the prompt, so which row
// that is does not change the estimate), later rows wait for it or take it, and report its id in
// first_shared. If that row fails before its estimate is final, the rows waiting fail with it.
// Problems run concurrently (max_problems_in_flight), everything through callbacks; with a seed
// every request is seeded from (seed, problem id, step, batch), so results are reproducible.
//
// Generator concept (engine/request.hpp): uint64_t submit(GenerationRequest, GenerationCallback);
// bool poll(); void cancel(uint64_t) (a cancelled request still calls back, finish "abort").
// Failure contract: a request that comes back with an error finishes its problem with
// LabelResult::error set and no labels; nothing throws from callbacks. Invalid input (no steps,
// empty answer, no prompt) throws ValueError from submit(). Keep polling until poll() returns
// false before destroying the labeler: requests it cancelled still call back into it.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "genprm/gen/request.hpp"
#include "genprm/rpe/adaptive.hpp"
#include "genprm/rpe/config.hpp"
#include "genprm/rpe/grade.hpp"
#include "genprm/rpe/labels.hpp"
#include "genprm/rpe/result.hpp"
#include "genprm/rpe/steps.hpp"
#include "genprm/util/error.hpp"
#include "genprm/util/in_flight.hpp"

namespace genprm::rpe {

/// One solution to label.
struct LabelInput {
  std::string id;                  ///< names the row; also keys its request seeds
  std::string problem;
  std::vector<std::string> steps;  ///< the solution's steps (split_steps of a forced solution)
  std::string answer;              ///< ground truth
  std::string prompt;              ///< pre-rendered chat prompt; empty: the renderer's
  /// MC(s_1) measured elsewhere, e.g. the pass rate of the problem's sampled solutions (the
  /// reference's base score): no MC(s_1) rollouts are drawn, K follows from it.
  std::optional<double> mc_first;
};

/// The chat prompt of a problem, with the generation prompt (assistant turn opened).
using PromptRenderer = std::function<std::string(const std::string& problem)>;

template <typename Gen, typename Grader = MathGrader>
class Labeler {
  using Clock = std::chrono::steady_clock;

 public:
  using Callback = std::function<void(LabelResult)>;

  Labeler(Gen& gen, PromptRenderer render, LabelerConfig cfg, Grader grader = {})
      : gen_(gen),
        render_(std::move(render)),
        cfg_(std::move(cfg)),
        grader_(std::move(grader)),
        flight_(static_cast<size_t>(std::max(cfg_.max_problems_in_flight, 1)),
                [this](uint64_t key, LabelInput in) { start_problem(key, std::move(in)); }) {
    cfg_.validate();
    if (cfg_.adaptive.enabled && cfg_.fixed_k == 0) {
      const KRule& k = cfg_.k_rule;
      first_test_ = KBucketTest(k, check_points(cfg_.first_batch(), {k.k_low, k.k_mid, k.k_high}, cfg_.adaptive.round),
                                cfg_.adaptive.delta);
    }
  }

  const LabelerConfig& config() const { return cfg_; }

  /// Queues a solution; `on_done` runs on the polling thread when it is labelled. Throws
  /// ValueError for invalid input.
  void submit(LabelInput input, Callback on_done) {
    GENPRM_CHECK_ARG(!input.steps.empty(), "steps: the solution '{}' has no step", input.id);
    GENPRM_CHECK_ARG(!input.answer.empty(), "answer: the ground truth of '{}' is empty", input.id);
    GENPRM_CHECK_ARG(!input.mc_first || (*input.mc_first >= 0.0 && *input.mc_first <= 1.0),
                     "mc_first: '{}' gives {}, outside [0, 1]", input.id, input.mc_first.value_or(0.0));
    GENPRM_CHECK_ARG(!input.prompt.empty() || (render_ && !input.problem.empty()),
                     "problem: '{}' has neither a problem text (with a chat renderer) nor a pre-rendered prompt",
                     input.id);
    flight_.submit(std::move(input), std::move(on_done));
  }

  /// Drives the generator by one step. Returns false when nothing is left (no problem live or
  /// queued, no request outstanding).
  bool poll() {
    if (idle()) return false;
    const bool progressed = gen_.poll();
    GENPRM_CHECK(progressed || pending_ == 0, "rpe labeler: {} requests outstanding but the generator is idle", pending_);
    GENPRM_CHECK(!(pending_ == 0 && !live_.empty()), "rpe labeler: {} problems live but no request is pending",
                 live_.size());
    return !idle();
  }

  void run_until_idle() {
    while (poll()) {
    }
  }

  bool idle() const { return flight_.idle() && pending_ == 0; }
  size_t live_problems() const { return live_.size(); }

  LabelResult label(LabelInput input) {
    std::optional<LabelResult> out;
    submit(std::move(input), [&](LabelResult r) { out = std::move(r); });
    run_until_idle();
    GENPRM_CHECK(out.has_value(), "rpe labeler: the solution did not finish");
    return std::move(*out);
  }

  /// Labels all inputs with up to max_problems_in_flight at once; results in input order.
  /// `on_result(index, result)` runs as each finishes (e.g. to append it to a file at once).
  std::vector<LabelResult> label_many(std::vector<LabelInput> inputs,
                                          const std::function<void(size_t, const LabelResult&)>& on_result = {}) {
    return run_all_in_order<LabelResult>(
        std::move(inputs), [this](LabelInput in, Callback cb) { submit(std::move(in), std::move(cb)); },
        [this] { run_until_idle(); }, on_result, "rpe labeler");
  }

 private:
  struct StepState {
    std::string text;  ///< the assistant text through this step
    uint64_t request_id = 0;
    bool outstanding = false;
    bool cancelled = false;
    bool waiting = false;  ///< adaptive: its last round is back, it awaits its check
    bool settled = false;  ///< adaptive: its estimate is final
    std::optional<SequentialTest> test;  ///< adaptive: its label test, built once MC(s_t) is final
    StepResult result;
  };
  /// share_first: one problem's MC(s_1), estimated by its first row.
  struct SharedFirst {
    bool done = false;
    std::string owner;     ///< the id of the row that estimated it
    LabelResult estimate;  ///< its MC(s_1) fields (copy_first)
    std::vector<uint64_t> waiting;  ///< in-flight keys of rows waiting for it
  };
  struct ProblemState {
    uint64_t key = 0;       ///< the in-flight id
    uint64_t seed_key = 0;  ///< problem_key(id)
    uint64_t first_seed_key = 0;  ///< MC(s_1)'s requests: seed_key, or the prompt's key when shared
    bool first_owner = false;     ///< share_first: this row estimates the shared MC(s_1)
    LabelInput input;
    std::string base;  ///< the chat prompt (assistant turn opened)
    int first_batches = 0;
    int steps_outstanding = 0;
    // adaptive
    int first_boundary = 0;     ///< where the fixed scheme's current MC(s_1) request ends
    int first_batch_start = 0;  ///< where it starts
    int rounds_in_flight = 0;
    std::vector<StepState> steps;
    Clock::time_point start;
    LabelResult result;
  };
  /// Begins a problem the in-flight queue admitted (in submission order).
  void start_problem(uint64_t key, LabelInput input) {
    auto p = std::make_unique<ProblemState>();
    p->key = key;
    p->seed_key = problem_key(input.id);
    p->input = std::move(input);
    p->start = Clock::now();
    p->result.id = p->input.id;
    p->result.epsilon = cfg_.labels.epsilon;
    ProblemState* pp = p.get();
    live_.emplace(pp->key, std::move(p));
    try {
      pp->base = pp->input.prompt.empty() ? render_(pp->input.problem) : pp->input.prompt;
    } catch (const std::exception& e) {
      pp->result.error = fmt::format("prompt: {}", e.what());
      finish(*pp);
      return;
    }
    pp->first_seed_key = pp->seed_key;
    if (pp->input.mc_first) {  // given: no rollouts from the prompt alone
      LabelResult& r = pp->result;
      r.first_given = true;
      r.mc_first = *pp->input.mc_first;
      r.k = cfg_.fixed_k > 0 ? cfg_.fixed_k : cfg_.k_rule.k_for(r.mc_first);
      start_steps(*pp);
      return;
    }
    if (cfg_.share_first) {
      const std::string prompt = first_prompt(*pp);
      auto [it, inserted] = shared_first_.try_emplace(prompt);
      if (!inserted) {  // another row of this problem has it, or is estimating it
        if (it->second.done) {
          adopt_first(*pp, it->second);
          start_steps(*pp);
        } else {
          it->second.waiting.push_back(pp->key);
        }
        return;
      }
      pp->first_owner = true;
      pp->first_seed_key = problem_key(prompt);
    }
    if (cfg_.adaptive.enabled)
      start_first_adaptive(*pp);
    else
      submit_first(*pp, cfg_.first_batch());
  }

  ProblemState* find(uint64_t key) {
    auto it = live_.find(key);
    return it == live_.end() ? nullptr : it->second.get();
  }

  /// The prompt of MC(s_1)'s rollouts (submit_rollouts of step_prefix), which keys a shared estimate.
  std::string first_prompt(const ProblemState& p) const { return p.base + cfg_.step_prefix; }

  SamplingParams params(const ProblemState& p, int step, int batch) const {
    SamplingParams sp;
    sp.temperature = cfg_.rollout.temperature;
    sp.top_p = cfg_.rollout.top_p;
    sp.top_k = cfg_.rollout.top_k;
    sp.max_tokens = cfg_.rollout.max_tokens;
    sp.stop = cfg_.rollout.stop;
    if (cfg_.seed) sp.seed = request_seed(*cfg_.seed, step == 0 ? p.first_seed_key : p.seed_key, step, batch);
    return sp;
  }

  /// Submits `n` rollouts of `assistant_text` after the chat prompt; `on_done(problem, output)`
  /// runs when they are back and the problem is still live.
  template <typename OnDone>
  uint64_t submit_rollouts(ProblemState& p, const std::string& assistant_text, int n, SamplingParams sp,
                           OnDone on_done) {
    GenerationRequest req;
    req.prompt_text = p.base + assistant_text;
    req.n = n;
    req.params = std::move(sp);
    ++pending_;
    const uint64_t key = p.key;
    p.result.requests += 1;
    return gen_.submit(std::move(req), [this, key, on_done](GenerationOutput out) mutable {
      --pending_;
      ProblemState* pp = find(key);
      if (pp == nullptr) return;  // failed earlier; this is a straggler
      pp->result.prompt_tokens += static_cast<long>(out.prompt_ids.size());
      pp->result.cached_prompt_tokens += static_cast<long>(out.cached_prompt_tokens);
      for (const auto& s : out.samples) {
        pp->result.generated_tokens += static_cast<long>(s.token_ids.size());
        if (s.finish_reason != "abort") pp->result.rollouts += 1;
      }
      on_done(*pp, std::move(out));
    });
  }

  /// Correct rollouts among `out`'s samples, each graded as `prefix` + its text.
  int count_correct(const ProblemState& p, const std::string& prefix, const GenerationOutput& out) const {
    int correct = 0;
    for (const auto& s : out.samples)
      if (solution_correct(prefix + s.text, p.input.answer, grader_)) ++correct;
    return correct;
  }

  static std::string bad_output(const GenerationOutput& out, int n) {
    if (!out.error.empty()) return out.error;
    if (static_cast<int>(out.samples.size()) != n)
      return fmt::format("expected {} samples, got {}", n, out.samples.size());
    return {};
  }

  /// Adds one MC(s_1) request's `n` rollouts to the estimate; false (the problem failed) when the
  /// output is bad.
  bool add_first(ProblemState& p, int n, GenerationOutput& out) {
    if (std::string why = bad_output(out, n); !why.empty()) {
      fail(p, fmt::format("MC(s_1) request: {}", why));
      return false;
    }
    LabelResult& r = p.result;
    r.first_requests += 1;
    r.k_first += n;
    r.correct_first += count_correct(p, cfg_.step_prefix, out);
    if (cfg_.keep_rollouts)
      for (auto& smp : out.samples) r.first_rollouts.push_back(std::move(smp.text));
    return true;
  }

  void submit_first(ProblemState& p, int n) {
    const int batch = p.first_batches++;
    submit_rollouts(p, cfg_.step_prefix, n, params(p, 0, batch), [this, n](ProblemState& pp, GenerationOutput out) {
      if (!add_first(pp, n, out)) return;
      LabelResult& r = pp.result;
      const double mc = static_cast<double>(r.correct_first) / r.k_first;
      if (cfg_.fixed_k > 0) {
        r.k = cfg_.fixed_k;
      } else {
        const int want = cfg_.k_rule.k_for(mc);
        if (want > r.k_first) {
          submit_first(pp, want - r.k_first);
          return;
        }
        r.k = want;
      }
      r.mc_first = mc;
      first_done(pp);
    });
  }

  /// Adds one request's rollouts from a step prefix to that step's estimate (its tokens, right
  /// rollouts, texts; one request per round): the fixed scheme's single request and every
  /// adaptive round. The rollout count `k` is the caller's (fixed: K set at submission).
  void add_step(const ProblemState& p, StepState& st, GenerationOutput& out) {
    StepResult& r = st.result;
    r.prompt_tokens += static_cast<long>(out.prompt_ids.size());
    r.cached_prompt_tokens += static_cast<long>(out.cached_prompt_tokens);
    for (const auto& s : out.samples) r.generated_tokens += static_cast<long>(s.token_ids.size());
    r.correct += count_correct(p, st.text, out);
    r.rounds += 1;
    if (cfg_.keep_rollouts)
      for (auto& smp : out.samples) r.rollouts.push_back(std::move(smp.text));
  }

  // ---- adaptive MC(s_1): rounds inside the fixed scheme's requests ----
  void start_first_adaptive(ProblemState& p) {
    p.first_boundary = cfg_.first_batch();
    p.first_batch_start = 0;
    submit_first_round(p);
  }

  void submit_first_round(ProblemState& p) {
    const int taken = p.result.k_first;
    // With a fixed K nothing about MC(s_1) is decided early: its K rollouts in one request.
    const int n = cfg_.fixed_k > 0 ? p.first_boundary - taken : std::min(cfg_.adaptive.round, p.first_boundary - taken);
    SamplingParams sp = params(p, 0, p.first_batches);
    sp.first_sample = taken - p.first_batch_start;
    submit_rollouts(p, cfg_.step_prefix, n, std::move(sp),
                    [this, n](ProblemState& pp, GenerationOutput out) { on_first_round(pp, n, std::move(out)); });
  }

  void on_first_round(ProblemState& p, int n, GenerationOutput out) {
    if (!add_first(p, n, out)) return;
    LabelResult& r = p.result;
    const double mc = static_cast<double>(r.correct_first) / r.k_first;
    int k = 0;
    if (cfg_.fixed_k > 0) {
      if (r.k_first >= cfg_.fixed_k) k = cfg_.fixed_k;
    } else {
      const bool at_boundary = r.k_first == p.first_boundary;
      const int want = cfg_.k_rule.k_for(mc);
      if (at_boundary && want <= r.k_first) {
        k = want;  // where the fixed scheme stops
      } else if (const int d = first_test_.decide(r.k_first, r.correct_first); d > 0) {
        k = d;
        r.first_early = true;
      } else if (at_boundary) {  // the fixed scheme's next request (a top-up) begins here
        p.first_batch_start = r.k_first;
        p.first_boundary = want;
        ++p.first_batches;
      }
    }
    if (k == 0) {
      submit_first_round(p);
      return;
    }
    r.k = k;
    r.mc_first = mc;
    first_done(p);
  }

  // ---- adaptive steps ----
  void submit_step_round(ProblemState& p, int t) {
    StepState& st = p.steps[static_cast<size_t>(t - 1)];
    const int n = std::min(cfg_.adaptive.round, p.result.k - st.result.k);
    SamplingParams sp = params(p, t, 0);
    sp.first_sample = st.result.k;
    st.outstanding = true;
    st.waiting = false;
    ++p.rounds_in_flight;
    st.request_id = submit_rollouts(p, st.text, n, std::move(sp), [this, t, n](ProblemState& pp, GenerationOutput out) {
      on_step_round(pp, t, n, std::move(out));
    });
  }

  void on_step_round(ProblemState& p, int t, int n, GenerationOutput out) {
    StepState& st = p.steps[static_cast<size_t>(t - 1)];
    --p.rounds_in_flight;
    if (!st.outstanding || st.settled) {  // cancelled, or after a zero
      st.outstanding = false;
      if (p.steps_outstanding == 0 && p.rounds_in_flight == 0) finish(p);
      return;
    }
    st.outstanding = false;
    if (std::string why = bad_output(out, n); !why.empty()) {
      fail(p, fmt::format("step {} request: {}", t, why));
      return;
    }
    add_step(p, st, out);
    st.result.k += n;
    st.waiting = true;
    settle(p);
  }

  /// Checks the steps in order while the step before is final; draws the next round of the first
  /// open one; finishes the problem when every step is final.
  void settle(ProblemState& p) {
    const int T = static_cast<int>(p.steps.size());
    double mc_prev = p.result.mc_first;
    for (int t = 1; t < T; ++t) {
      StepState& st = p.steps[static_cast<size_t>(t - 1)];
      StepResult& r = st.result;
      if (!st.settled) {
        if (!st.waiting) return;  // its round is out; the later steps wait for it
        bool done = r.k >= p.result.k;
        if (!done && !st.test)
          st.test = SequentialTest::label(mc_prev, cfg_.labels.epsilon,
                                          check_points(p.result.k, {}, cfg_.adaptive.round), cfg_.adaptive.delta);
        if (!done && st.test->decide(r.k, r.correct) != Decision::Open) {
          done = true;
          r.early = true;
        }
        if (!done) {
          submit_step_round(p, t);
          return;
        }
        st.waiting = false;
        st.settled = true;
        --p.steps_outstanding;
        r.mc_raw = static_cast<double>(r.correct) / r.k;
        if (r.correct == 0) {  // a zero: the later steps' MC is 0 by propagation
          for (int u = t + 1; u < T; ++u) {
            StepState& later = p.steps[static_cast<size_t>(u - 1)];
            later.settled = true;
            later.waiting = false;
            --p.steps_outstanding;
            if (later.outstanding && cfg_.cancel_after_zero) {
              later.outstanding = false;
              later.cancelled = true;
              gen_.cancel(later.request_id);
            }
          }
          break;
        }
      }
      mc_prev = r.mc_raw;
    }
    if (p.steps_outstanding == 0 && p.rounds_in_flight == 0) finish(p);
  }

  /// MC(s_1) is final: shares it with the rows of the same problem waiting for it
  /// (share_first), then starts the steps.
  void first_done(ProblemState& p) {
    if (p.first_owner) {
      p.first_owner = false;
      SharedFirst& sh = shared_first_.at(first_prompt(p));
      sh.done = true;
      sh.owner = p.result.id;
      copy_first(p.result, sh.estimate);
      std::vector<uint64_t> waiting = std::move(sh.waiting);
      sh.waiting.clear();
      for (uint64_t key : waiting)
        if (ProblemState* q = find(key)) {
          adopt_first(*q, sh);
          start_steps(*q);
        }
    }
    start_steps(p);
  }

  /// share_first: a row takes the MC(s_1) estimated by another row of its problem (its
  /// rollouts and requests are counted there, not here).
  void adopt_first(ProblemState& p, const SharedFirst& sh) {
    p.result.first_shared = sh.owner;
    copy_first(sh.estimate, p.result);
  }

  /// The MC(s_1) estimate's fields of a result (not its request count: requests stay where made).
  static void copy_first(const LabelResult& from, LabelResult& to) {
    to.k_first = from.k_first;
    to.correct_first = from.correct_first;
    to.first_early = from.first_early;
    to.k = from.k;
    to.mc_first = from.mc_first;
    to.first_rollouts = from.first_rollouts;
  }

  void start_steps(ProblemState& p) {
    const auto& steps = p.input.steps;
    const int T = static_cast<int>(steps.size());
    p.steps.resize(steps.size());
    for (int t = 1; t <= T; ++t) {
      StepState& st = p.steps[static_cast<size_t>(t - 1)];
      st.text = t < T ? rollout_prefix(steps, t) : join_steps(steps);
      st.result.step = t;
    }
    // The last step: its own answer, no rollout.
    StepResult& last = p.steps.back().result;
    last.rollout = false;
    last.k = 0;
    last.correct = solution_correct(p.steps.back().text, p.input.answer, grader_) ? 1 : 0;
    last.mc_raw = last.correct;
    if (cfg_.adaptive.enabled) {
      p.steps_outstanding = T - 1;
      for (int t = 1; t < T; ++t) submit_step_round(p, t);
      if (p.steps_outstanding == 0) finish(p);
      return;
    }
    for (int t = 1; t < T; ++t) {
      StepState& st = p.steps[static_cast<size_t>(t - 1)];
      st.outstanding = true;
      st.result.k = p.result.k;
      ++p.steps_outstanding;
      const int k = p.result.k;
      st.request_id = submit_rollouts(p, st.text, k, params(p, t, 0), [this, t, k](ProblemState& pp, GenerationOutput out) {
        on_step_done(pp, t, k, std::move(out));
      });
    }
    if (p.steps_outstanding == 0) finish(p);
  }

  void on_step_done(ProblemState& p, int t, int k, GenerationOutput out) {
    StepState& st = p.steps[static_cast<size_t>(t - 1)];
    if (!st.outstanding) return;  // cancelled: already accounted
    st.outstanding = false;
    --p.steps_outstanding;
    if (std::string why = bad_output(out, k); !why.empty()) {
      fail(p, fmt::format("step {} request: {}", t, why));
      return;
    }
    add_step(p, st, out);
    StepResult& r = st.result;
    r.mc_raw = static_cast<double>(r.correct) / k;
    if (r.correct == 0 && cfg_.cancel_after_zero) {
      for (size_t u = static_cast<size_t>(t); u < p.steps.size(); ++u) {
        StepState& later = p.steps[u];
        if (!later.outstanding) continue;
        later.outstanding = false;
        later.cancelled = true;
        --p.steps_outstanding;
        gen_.cancel(later.request_id);
      }
    }
    if (p.steps_outstanding == 0) finish(p);
  }

  void fail(ProblemState& p, std::string why) {
    if (p.result.error.empty()) p.result.error = std::move(why);
    for (auto& st : p.steps) {
      if (!st.outstanding) continue;
      st.outstanding = false;
      gen_.cancel(st.request_id);
    }
    finish(p);
  }

  void finish(ProblemState& p) {
    if (p.first_owner) {  // failed before its MC(s_1) was final: so do the rows waiting for it
      p.first_owner = false;
      auto it = shared_first_.find(first_prompt(p));
      std::vector<uint64_t> waiting = std::move(it->second.waiting);
      shared_first_.erase(it);
      for (uint64_t key : waiting)
        if (ProblemState* q = find(key)) {
          q->result.error = fmt::format("MC(s_1), estimated by row '{}' of the same problem: {}", p.result.id,
                                        p.result.error);
          finish(*q);
        }
    }
    LabelResult& r = p.result;
    if (r.error.empty()) {
      std::vector<double> mc;
      bool zero_seen = false;
      for (auto& st : p.steps) {
        StepResult& s = st.result;
        // After the first zero, steps are not estimated: their MC is 0 by the rule, and whether
        // their rollouts finished before the cancellation must not show in the result.
        if (zero_seen) {
          s.estimated = false;
          s.k = 0;
          s.correct = 0;
          s.mc_raw = 0.0;
          s.rounds = 0;
          s.early = false;
          s.rollouts.clear();
        }
        if (s.mc_raw == 0.0) zero_seen = true;
        mc.push_back(s.mc_raw);
      }
      std::vector<StepLabels> labels = compute_labels(mc, r.mc_first, cfg_.labels);
      for (size_t i = 0; i < p.steps.size(); ++i) {
        StepResult& s = p.steps[i].result;
        s.labels = labels[i];
        r.labels.push_back(s.labels.label ? 1 : 0);
        r.hard_labels.push_back(s.labels.hard_label ? 1 : 0);
        r.mc.push_back(s.labels.mc);
        r.steps.push_back(std::move(s));
      }
    } else {
      for (auto& st : p.steps) r.steps.push_back(std::move(st.result));
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - p.start).count();
    LabelResult out = std::move(r);
    const uint64_t key = p.key;
    live_.erase(key);  // p is gone from here on
    flight_.finish(key, std::move(out));  // admits the next problems, then calls back
  }

  Gen& gen_;
  PromptRenderer render_;
  LabelerConfig cfg_;
  Grader grader_;
  InFlight<LabelInput, LabelResult> flight_;  // admission, callbacks
  KBucketTest first_test_;                    // adaptive: MC(s_1)'s bucket (the same for every problem)
  std::map<std::string, SharedFirst> shared_first_;  // share_first: by MC(s_1)'s prompt
  std::map<uint64_t, std::unique_ptr<ProblemState>> live_;
  long pending_ = 0;
};

}  // namespace genprm::rpe
