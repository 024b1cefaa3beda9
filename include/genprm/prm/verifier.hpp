#pragma once
// The GenPRM verifier: staged generation analyze -> verify/execute -> output per rationale, with
// the reference's stop strings, budgets, round limit and fallback, Maj@N and many solutions in
// flight at once.
//
// Call pattern on the generator (docs/design.md "Engine contract"): every stage re-submits the
// whole prompt as text (conversation + assistant text so far); the engine's radix cache turns
// that into computing only the appended text. The N rationales of a step start as N requests of
// one prompt, which the engine computes once (or, with first_stage_as_one_request, as one request
// with n = N, which makes every path wait for the slowest analysis); then every path advances on
// its own: a path that stops at a code fence runs its code in the sandbox and submits its next
// stage while the others keep decoding. Step t+1 of a solution starts as soon as path 0 of step t
// is done (its text is assistant turn t, as the reference keeps the first path). With
// sequential_paths the paths of a step run one after another instead, as the reference's Maj@N
// loop does (path k's code then sees the variables of paths 1..k-1), and step t+1 waits for all
// of them; solutions still run concurrently.
// The reward of each path is read as VerifierConfig::reward says (reward.hpp).
//
// Generator concept: uint64_t submit(GenerationRequest, GenerationCallback); bool poll().
// Executor concept: S open_session(); void close_session(S); void submit(S, std::string code,
//   std::function<void(R)>) with R having output/ok/timed_out/seconds; poll() delivers callbacks.
//   One session per solution: the reference makes one CodeExecutor per solution and every path
//   of every step executes into its namespace.
// Failure contract: a request that comes back with an error finishes its path with reward 0.5
// and sets SolutionResult::error; nothing throws from callbacks.
// Incremental verification (SolutionInput::prior, prompt.hpp): only the steps after the prior's
// are generated; the prior's steps are copied, its first-path texts become the earlier assistant
// turns, and its executed code blocks are replayed (replay_order(), result.hpp) into the fresh
// session just before the first new block, so they run only when a new block needs the namespace.
// check_prior() (called by submit) throws ValueError for a prior that does not fit the input.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "genprm/gen/request.hpp"
#include "genprm/gen/rng.hpp"
#include "genprm/prm/code.hpp"
#include "genprm/prm/config.hpp"
#include "genprm/prm/prompt.hpp"
#include "genprm/prm/result.hpp"
#include "genprm/prm/reward.hpp"
#include "genprm/util/error.hpp"
#include "genprm/util/in_flight.hpp"

namespace genprm::prm {

namespace detail {
template <typename E, typename = void>
struct has_wait_and_poll : std::false_type {};
template <typename E>
struct has_wait_and_poll<E, std::void_t<decltype(std::declval<E&>().wait_and_poll(0.0))>> : std::true_type {};
template <typename R, typename = void>
struct has_state_reset : std::false_type {};
template <typename R>
struct has_state_reset<R, std::void_t<decltype(std::declval<const R&>().state_reset)>> : std::true_type {};
}  // namespace detail

/// What the verifier needs from a tokenizer (kept as functions so tests can use a fake one).
struct TokenizerOps {
  std::function<std::vector<int32_t>(const std::string&)> encode;  ///< no special tokens added
  std::function<std::string(const std::vector<int32_t>&)> decode;
  ChatRenderer render_chat;  ///< chat template, no generation prompt
  std::string eos_token;     ///< removed from the end of the rendered prompt
  int32_t yes_id = -1;       ///< token id of "Yes"
  int32_t no_id = -1;        ///< token id of "No"

  void validate() const {
    GENPRM_CHECK_ARG(encode && decode && render_chat, "TokenizerOps: encode, decode and render_chat are required");
    GENPRM_CHECK_ARG(yes_id >= 0 && no_id >= 0 && yes_id != no_id,
                     "TokenizerOps: token ids of 'Yes' ({}) and 'No' ({}) must be valid and distinct",
                     yes_id, no_id);
  }
};

template <typename Gen, typename Exec>
class Verifier {
  using Clock = std::chrono::steady_clock;
  using Session = decltype(std::declval<Exec&>().open_session());

 public:
  using Callback = std::function<void(SolutionResult)>;

  Verifier(Gen& gen, Exec& exec, TokenizerOps tok, VerifierConfig cfg)
      : gen_(gen),
        exec_(exec),
        tok_(std::move(tok)),
        cfg_(std::move(cfg)),
        flight_(static_cast<size_t>(std::max(cfg_.max_solutions_in_flight, 1)),
                [this](uint64_t key, SolutionInput in) { start_solution(key, std::move(in)); }) {
    tok_.validate();
    cfg_.validate();
  }

  const VerifierConfig& config() const { return cfg_; }

  /// Throws ValueError (naming the id) when `input.prior` is set but is not a verified result of
  /// a prefix of `input`'s steps: another problem, a paragraph that differs, more steps than the
  /// input, an error, a step without paths, or inconsistent rewards. No-op without a prior.
  static void check_prior(const SolutionInput& input) {
    if (!input.prior) return;
    const SolutionResult& p = *input.prior;
    const std::vector<std::string> steps = effective_steps(input.steps);
    GENPRM_CHECK_ARG(p.error.empty(), "verifier: solution '{}': the prior result failed ({}) and cannot be reused",
                     input.id, p.error);
    GENPRM_CHECK_ARG(p.problem == input.problem,
                     "verifier: solution '{}': the prior result is of another problem", input.id);
    GENPRM_CHECK_ARG(p.steps.size() <= steps.size(),
                     "verifier: solution '{}': the prior result has {} steps, more than the solution's {}",
                     input.id, p.steps.size(), steps.size());
    GENPRM_CHECK_ARG(p.value.size() == p.steps.size(),
                     "verifier: solution '{}': the prior result has {} rewards for {} steps", input.id,
                     p.value.size(), p.steps.size());
    for (size_t i = 0; i < p.steps.size(); ++i) {
      const StepResult& st = p.steps[i];
      GENPRM_CHECK_ARG(st.step == static_cast<int>(i + 1),
                       "verifier: solution '{}': step {} of the prior result is numbered {}", input.id, i + 1,
                       st.step);
      GENPRM_CHECK_ARG(st.paragraph == steps[i],
                       "verifier: solution '{}': step {} of the prior result is not step {} of the solution "
                       "(the prior must verify a prefix of the steps)",
                       input.id, i + 1, i + 1);
      GENPRM_CHECK_ARG(!st.paths.empty(), "verifier: solution '{}': step {} of the prior result has no paths",
                       input.id, i + 1);
    }
  }

  /// Queues a solution; `on_done` runs on the polling thread when all its steps are verified.
  /// Starts it at once unless max_solutions_in_flight are live. Throws ValueError (before
  /// queueing anything) for a bad prior (check_prior).
  void submit(SolutionInput input, Callback on_done) {
    check_prior(input);
    flight_.submit(std::move(input), std::move(on_done));
  }

  /// Drives generator and executor by one step each. Returns false when nothing is left.
  bool poll() {
    if (flight_.idle()) return false;
    bool progressed = gen_.poll();
    if (!progressed && pending_exec_ > 0) {
      // Only code is running: wait for it instead of spinning.
      if constexpr (detail::has_wait_and_poll<Exec>::value) {
        exec_.wait_and_poll(0.05);
      } else {
        exec_.poll();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    } else {
      exec_.poll();
    }
    GENPRM_CHECK(!(pending_gen_ == 0 && pending_exec_ == 0 && !live_.empty()),
                 "prm verifier: {} solutions are live but no request or code run is pending",
                 live_.size());
    return !flight_.idle();
  }

  void run_until_idle() {
    while (poll()) {
    }
  }

  SolutionResult verify(SolutionInput input) {
    std::optional<SolutionResult> out;
    submit(std::move(input), [&](SolutionResult r) { out = std::move(r); });
    run_until_idle();
    GENPRM_CHECK(out.has_value(), "prm verifier: the solution did not finish");
    return std::move(*out);
  }

  /// Verifies all rows with up to max_solutions_in_flight at once; results in input order.
  /// `on_result(index, result)` runs as each finishes (e.g. to append it to a file at once).
  std::vector<SolutionResult> verify_many(
      std::vector<SolutionInput> inputs,
      const std::function<void(size_t, const SolutionResult&)>& on_result = {}) {
    for (const auto& in : inputs) check_prior(in);  // all or nothing
    return run_all_in_order<SolutionResult>(
        std::move(inputs), [this](SolutionInput in, Callback cb) { submit(std::move(in), std::move(cb)); },
        [this] { run_until_idle(); }, on_result, "prm verifier");
  }

  size_t live_solutions() const { return live_.size(); }

 private:
  struct PathState {
    std::string cur;       // assistant-side text so far (follows the step's base prompt)
    std::string analysis;  // stage-1 output
    bool in_fallback = false;
    bool done = false;
    PathResult result;
  };
  struct StepState {
    int t = 0;  // 1-based
    std::string base_prompt;
    std::vector<PathState> paths;
    int done_paths = 0;
    bool finished = false;
    bool next_started = false;
    Clock::time_point start;
    StepResult result;
  };
  struct SolutionState {
    uint64_t key = 0;  // the in-flight id
    SolutionInput input;
    std::vector<std::string> assistant_texts;  // turn t = path 0's text of step t
    std::vector<std::unique_ptr<StepState>> steps;  // steps reused+1 .. (steps[t - 1 - reused])
    int reused = 0;                              // leading steps taken from input.prior
    int finished_steps = 0;
    std::optional<Session> session;
    long next_code_order = 0;                    // CodeRun::order of the next block submitted
    Clock::time_point start;
    SolutionResult result;
  };
  /// Begins a solution the in-flight queue admitted (in submission order).
  void start_solution(uint64_t key, SolutionInput input) {
    auto s = std::make_unique<SolutionState>();
    s->key = key;
    s->input = std::move(input);
    s->input.steps = effective_steps(s->input.steps);
    s->start = Clock::now();
    s->result.id = s->input.id;
    s->result.problem = s->input.problem;
    s->result.threshold = cfg_.threshold;
    SolutionState* sp = s.get();
    live_.emplace(sp->key, std::move(s));
    if (sp->input.prior) adopt_prior(*sp);
    if (sp->reused == static_cast<int>(sp->input.steps.size())) {
      finish_solution(*sp);
    } else {
      start_step(*sp, sp->reused + 1);
    }
  }

  /// Takes the prior's steps as steps 1..k (checked by submit).
  void adopt_prior(SolutionState& s) {
    const SolutionResult& p = *s.input.prior;
    s.reused = static_cast<int>(p.steps.size());
    s.finished_steps = s.reused;
    for (const auto& st : p.steps) {
      s.assistant_texts.push_back(st.paths.front().text);
      for (const auto& path : st.paths)
        for (const auto& c : path.code) s.next_code_order = std::max(s.next_code_order, c.order + 1);
    }
  }

  StepState& step_of(SolutionState& s, int t) { return *s.steps[static_cast<size_t>(t - 1 - s.reused)]; }

  /// Opens the solution's session on its first code block; with a prior, first queues the
  /// prior's blocks (the session runs its blocks in order, so they run before the new one).
  void ensure_session(SolutionState& s) {
    if (s.session) return;
    s.session = exec_.open_session();
    if (!s.input.prior) return;
    const uint64_t key = s.key;
    for (const CodeRun* c : replay_order(s.input.prior->steps)) {
      ++pending_exec_;
      s.result.replayed_code_blocks += 1;
      exec_.submit(*s.session, c->code, [this, key](auto res) {
        --pending_exec_;
        SolutionState* sp = find(key);
        if (sp == nullptr) return;
        sp->result.time.replay_seconds += res.seconds;
        sp->result.time.code_seconds += res.seconds;
      });
    }
  }

  SolutionState* find(uint64_t key) {
    auto it = live_.find(key);
    return it == live_.end() ? nullptr : it->second.get();
  }

  /// Seeds are keyed on what is verified (the problem and the steps through t), not on the
  /// order solutions were submitted: a solution gets the same rationales alone or in any batch,
  /// in a resumed run, and when continued from a prior.
  std::optional<uint64_t> request_seed(const SolutionState& s, int t, int path, int req) const {
    if (!cfg_.seed) return std::nullopt;
    uint64_t content = fnv1a64(s.input.problem);
    for (int i = 0; i < t && i < static_cast<int>(s.input.steps.size()); ++i)
      content = splitmix64(content ^ fnv1a64(s.input.steps[static_cast<size_t>(i)]));
    return splitmix64(*cfg_.seed ^ (content * 0x9E3779B97F4A7C15ull) ^ (uint64_t(t) << 40) ^
                      (uint64_t(path + 1) << 20) ^ uint64_t(req));
  }

  SamplingParams sampling(int max_tokens, std::vector<std::string> stop, bool track) const {
    SamplingParams p;
    p.temperature = cfg_.temperature;
    p.top_p = cfg_.top_p;
    p.top_k = cfg_.top_k;
    p.repetition_penalty = cfg_.repetition_penalty;
    p.max_tokens = max_tokens;
    p.stop = std::move(stop);
    p.include_stop_str_in_output = true;
    p.processed_logprobs = cfg_.processed_logprobs;
    if (track) {
      p.logprobs = cfg_.reward == RewardMode::reference ? cfg_.reference_top_logprobs : 0;
      p.tracked_token_ids = {tok_.yes_id, tok_.no_id};
    }
    return p;
  }

  /// Submits `assistant_text` after the step's base prompt, for `n` samples.
  template <typename OnDone>
  void submit_stage(SolutionState& s, StepState& st, int path, int n, const std::string& assistant_text,
                    SamplingParams params, OnDone on_done) {
    GenerationRequest req;
    req.prompt_text = st.base_prompt + assistant_text;
    req.prompt_ids = tok_.encode(req.prompt_text);
    req.n = n;
    int reqno = path >= 0 ? st.paths[static_cast<size_t>(path)].result.requests : 0;
    params.seed = request_seed(s, st.t, path, reqno);
    req.params = std::move(params);
    ++pending_gen_;
    const uint64_t key = s.key;
    const int t = st.t;
    gen_.submit(std::move(req), [this, key, t, on_done](GenerationOutput out) mutable {
      --pending_gen_;
      SolutionState* sp = find(key);
      if (sp == nullptr) return;
      on_done(*sp, step_of(*sp, t), std::move(out));
    });
  }

  void start_step(SolutionState& s, int t) {
    auto st = std::make_unique<StepState>();
    st->t = t;
    st->start = Clock::now();
    st->base_prompt = step_base_prompt(tok_.render_chat, tok_.eos_token, cfg_, s.input.problem,
                                       s.input.steps, s.assistant_texts, t);
    st->paths.resize(static_cast<size_t>(cfg_.majority));
    st->result.step = t;
    st->result.paragraph = s.input.steps[static_cast<size_t>(t - 1)];
    StepState& step = *st;
    s.steps.push_back(std::move(st));
    const int n = cfg_.majority;
    if (cfg_.sequential_paths) {
      start_path(s, step, 0);  // path i + 1 starts when path i finishes (finish_path)
    } else if (!cfg_.first_stage_as_one_request) {
      for (int i = 0; i < n; ++i) start_path(s, step, i);
    } else if (mode_analyzes(cfg_.mode)) {
      const std::string opening = cfg_.analyze_start(t);
      submit_stage(s, step, -1, n, opening, sampling(cfg_.analyze_budget(), {cfg_.analyze_stop}, false),
                   [this, opening](SolutionState& sp, StepState& stp, GenerationOutput out) {
                     on_analyze_done(sp, stp, opening, std::move(out));
                   });
    } else {
      // No analysis: every path starts stage 2 from the same text.
      const std::string opening = stage2_opening();
      for (auto& p : step.paths) p.cur = opening;
      const int left = cfg_.max_tokens - count_tokens(opening);
      if (left > 0 && cfg_.round_limit > 0) {
        submit_stage(s, step, -1, n, opening, stage2_params(left),
                     [this](SolutionState& sp, StepState& stp, GenerationOutput out) {
                       fan_out(sp, stp, std::move(out), [this](SolutionState& a, StepState& b, int i,
                                                               const GenerationOutput& o, SampleOutput smp) {
                         on_stage2_done(a, b, i, o, std::move(smp));
                       });
                     });
      } else {
        for (int i = 0; i < n; ++i) advance(s, step, i);
      }
    }
  }

  /// Without analysis, stage 2 starts from the verify opening (or the output one).
  std::string stage2_opening() const {
    return mode_verifies(cfg_.mode) ? cfg_.verify_template : cfg_.output_template;
  }

  /// Starts path i of a step on its own request: its analysis, or stage 2 directly.
  void start_path(SolutionState& s, StepState& st, int i) {
    if (!mode_analyzes(cfg_.mode)) {
      st.paths[static_cast<size_t>(i)].cur = stage2_opening();
      advance(s, st, i);
      return;
    }
    const std::string opening = cfg_.analyze_start(st.t);
    submit_stage(s, st, i, 1, opening, sampling(cfg_.analyze_budget(), {cfg_.analyze_stop}, false),
                 [this, opening, i](SolutionState& sp, StepState& stp, GenerationOutput out) {
                   if (!take_own(sp, stp, i, out)) return;
                   on_analyze_sample(sp, stp, i, opening, std::move(out.samples[0]));
                 });
  }

  /// Accounts a path's own single-sample request; false (path failed) when it came back bad.
  bool take_own(SolutionState& s, StepState& st, int i, const GenerationOutput& out) {
    if (!out.error.empty() || out.samples.size() != 1) {
      fail_path(s, st, i, out.error.empty() ? "expected 1 sample" : out.error);
      return false;
    }
    PathState& p = st.paths[static_cast<size_t>(i)];
    if (p.result.requests == 0 && (i == 0 || st.result.prompt_tokens == 0)) {
      st.result.prompt_tokens = static_cast<long>(out.prompt_ids.size());
      if (i == 0) st.result.cached_prompt_tokens = static_cast<long>(out.cached_prompt_tokens);
    }
    p.result.requests += 1;
    p.result.prompt_tokens += static_cast<long>(out.prompt_ids.size());
    p.result.cached_prompt_tokens += static_cast<long>(out.cached_prompt_tokens);
    return true;
  }

  int count_tokens(const std::string& text) const { return static_cast<int>(tok_.encode(text).size()); }

  SamplingParams stage2_params(int left) const {
    std::vector<std::string> stop;
    if (mode_executes(cfg_.mode)) stop = {cfg_.code_stop, cfg_.output_stop};
    else stop = {cfg_.output_stop};
    return sampling(left, std::move(stop), true);
  }

  /// Hands sample i of a shared request to path i; accounts the shared prompt once per path.
  template <typename Each>
  void fan_out(SolutionState& s, StepState& st, GenerationOutput out, Each each) {
    if (!out.error.empty() || out.samples.size() != st.paths.size()) {
      std::string why = out.error.empty()
          ? fmt::format("expected {} samples, got {}", st.paths.size(), out.samples.size())
          : out.error;
      const int n = static_cast<int>(st.paths.size());  // st may be gone after the last path
      for (int i = 0; i < n; ++i) fail_path(s, st, i, why);
      return;
    }
    st.result.prompt_tokens = static_cast<long>(out.prompt_ids.size());
    st.result.cached_prompt_tokens = static_cast<long>(out.cached_prompt_tokens);
    const size_t n = out.samples.size();  // s and st may be gone after the last path finishes
    for (size_t i = 0; i < n; ++i) {
      auto& r = st.paths[i].result;
      // One computation shared by N paths: its prompt tokens are counted once, on path 0.
      if (i == 0) {
        r.prompt_tokens += static_cast<long>(out.prompt_ids.size());
        r.cached_prompt_tokens += static_cast<long>(out.cached_prompt_tokens);
      }
      r.requests += 1;
      each(s, st, static_cast<int>(i), out, std::move(out.samples[i]));
    }
  }

  void on_analyze_done(SolutionState& s, StepState& st, const std::string& opening, GenerationOutput out) {
    fan_out(s, st, std::move(out), [this, opening](SolutionState& sp, StepState& stp, int i,
                                                   const GenerationOutput&, SampleOutput smp) {
      on_analyze_sample(sp, stp, i, opening, std::move(smp));
    });
  }

  void on_analyze_sample(SolutionState& s, StepState& st, int i, const std::string& opening, SampleOutput smp) {
    PathState& p = st.paths[static_cast<size_t>(i)];
    p.result.generated_tokens += static_cast<long>(smp.token_ids.size());
    p.analysis = smp.text;
    p.cur = opening + smp.text + stage2_opening();
    advance(s, st, i);
  }

  /// One iteration of the reference's stage-2 loop for path i.
  void advance(SolutionState& s, StepState& st, int i) {
    PathState& p = st.paths[static_cast<size_t>(i)];
    const int left = cfg_.max_tokens - count_tokens(p.cur);
    if (left > 0 && p.result.rounds < cfg_.round_limit) {
      p.in_fallback = false;
      submit_path(s, st, i, stage2_params(left));
      return;
    }
    // Budget or round limit exhausted: the output fallback.
    if (mode_analyzes(cfg_.mode)) {
      const size_t end = p.analysis.find("</analyze>");
      p.cur = cfg_.analyze_start(st.t) + p.analysis.substr(0, end) + "</analyze>\n" + cfg_.output_template;
    } else {
      p.cur = p.cur + "</verify>\n" + cfg_.output_template;
    }
    p.in_fallback = true;
    p.result.fallbacks += 1;
    submit_path(s, st, i, sampling(cfg_.fallback_tokens, {cfg_.output_stop}, true));
  }

  void submit_path(SolutionState& s, StepState& st, int i, SamplingParams params) {
    const std::string text = st.paths[static_cast<size_t>(i)].cur;
    submit_stage(s, st, i, 1, text, std::move(params),
                 [this, i](SolutionState& sp, StepState& stp, GenerationOutput out) {
                   if (!take_own(sp, stp, i, out)) return;
                   SampleOutput smp = std::move(out.samples[0]);
                   on_stage2_done(sp, stp, i, out, std::move(smp));
                 });
  }

  static bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  }

  void on_stage2_done(SolutionState& s, StepState& st, int i, const GenerationOutput&, SampleOutput smp) {
    PathState& p = st.paths[static_cast<size_t>(i)];
    p.result.rounds += 1;
    p.result.generated_tokens += static_cast<long>(smp.token_ids.size());
    if (ends_with(smp.text, cfg_.output_stop) ||
        (p.in_fallback && p.result.fallbacks >= cfg_.max_fallbacks)) {
      finish_path(s, st, i, smp);
      return;
    }
    const std::string context = p.cur + smp.text;
    p.cur = context;
    if (!mode_executes(cfg_.mode)) {
      p.cur += cfg_.code_output_open;
      advance(s, st, i);
      return;
    }
    std::optional<std::string> code = extract_last_python_block(context);
    if (!code) {
      CodeRun run;
      run.output = cfg_.no_code_message;
      append_code_output(p, run);
      advance(s, st, i);
      return;
    }
    ensure_session(s);
    ++pending_exec_;
    const uint64_t key = s.key;
    const int t = st.t;
    const long order = s.next_code_order++;
    std::string code_text = *code;
    exec_.submit(*s.session, std::move(code_text), [this, key, t, i, order, c = *code](auto res) {
      --pending_exec_;
      SolutionState* sp = find(key);
      if (sp == nullptr) return;
      StepState& stp = step_of(*sp, t);
      CodeRun run;
      run.code = c;
      run.output = res.output;
      run.executed = true;
      run.ok = res.ok;
      run.timed_out = res.timed_out;
      if constexpr (detail::has_state_reset<decltype(res)>::value) run.state_reset = res.state_reset;
      run.order = order;
      run.seconds = res.seconds;
      sp->result.time.code_seconds += run.seconds;
      append_code_output(stp.paths[static_cast<size_t>(i)], run);
      advance(*sp, stp, i);
    });
  }

  void append_code_output(PathState& p, CodeRun run) {
    p.cur += cfg_.code_output_open + run.output + cfg_.code_output_close;
    p.result.code.push_back(std::move(run));
  }

  void fail_path(SolutionState& s, StepState& st, int i, const std::string& why) {
    if (s.result.error.empty()) s.result.error = fmt::format("step {} path {}: {}", st.t, i, why);
    SampleOutput none;
    none.finish_reason = "error";
    PathState& p = st.paths[static_cast<size_t>(i)];
    if (p.done) return;
    finish_path(s, st, i, none);
  }

  void finish_path(SolutionState& s, StepState& st, int i, const SampleOutput& final_gen) {
    PathState& p = st.paths[static_cast<size_t>(i)];
    p.result.text = p.cur + final_gen.text;
    // A failed request (fail_path) has no final generation to read: 0.5 and no note.
    const bool failed = final_gen.finish_reason == "error";
    Judgement j = failed ? Judgement{}
        : cfg_.reward == RewardMode::reference
        ? read_reference_judgement(p.result.text, final_gen, tok_.yes_id, tok_.no_id)
        : read_judgement(p.cur, final_gen, tok_.decode);
    p.result.reward = j.reward;
    p.result.judgement_found = j.found;
    p.result.judgement = j.sampled;
    p.result.p_yes = j.p_yes;
    p.result.p_no = j.p_no;
    p.result.reward_note = j.note;
    p.result.finish_reason = final_gen.finish_reason;
    p.done = true;
    st.done_paths += 1;
    if (i == 0) {
      // Assistant turn t of every later step's prompt.
      if (static_cast<int>(s.assistant_texts.size()) < st.t) s.assistant_texts.resize(static_cast<size_t>(st.t));
      s.assistant_texts[static_cast<size_t>(st.t - 1)] = p.result.text;
      if (cfg_.next_step_starts_early()) maybe_start_next(s, st);
    }
    const int n = static_cast<int>(st.paths.size());
    if (cfg_.sequential_paths && i + 1 < n) start_path(s, st, i + 1);
    if (st.done_paths == n) finish_step(s, st);
  }

  void maybe_start_next(SolutionState& s, StepState& st) {
    if (st.next_started) return;
    st.next_started = true;
    if (st.t < static_cast<int>(s.input.steps.size())) start_step(s, st.t + 1);
  }

  void finish_step(SolutionState& s, StepState& st) {
    st.finished = true;
    double sum = 0.0;
    for (auto& p : st.paths) {
      sum += p.result.reward;
      st.result.paths.push_back(std::move(p.result));
    }
    st.result.reward = sum / static_cast<double>(st.paths.size());
    st.result.reward_note = step_reward_note(st.result.paths);
    st.result.seconds = std::chrono::duration<double>(Clock::now() - st.start).count();
    s.finished_steps += 1;
    if (!st.next_started) maybe_start_next(s, st);
    if (s.finished_steps == static_cast<int>(s.input.steps.size())) finish_solution(s);
  }

  void finish_solution(SolutionState& s) {
    SolutionResult& r = s.result;
    if (s.input.prior) {
      // Copied unchanged; the totals below count only this call's work (result.hpp).
      const SolutionResult& p = *s.input.prior;
      r.reused_steps = s.reused;
      for (int k = 0; k < s.reused; ++k) {
        r.value.push_back(p.value[static_cast<size_t>(k)]);
        r.steps.push_back(p.steps[static_cast<size_t>(k)]);
      }
    }
    for (auto& stp : s.steps) {
      r.value.push_back(stp->result.reward);
      for (const auto& p : stp->result.paths) {
        r.generated_tokens += p.generated_tokens;
        r.prompt_tokens += p.prompt_tokens;
        r.cached_prompt_tokens += p.cached_prompt_tokens;
      }
      r.steps.push_back(std::move(stp->result));
    }
    r.first_wrong_step = first_below(r.value, cfg_.threshold);
    r.time.seconds = std::chrono::duration<double>(Clock::now() - s.start).count();
    if (s.session) exec_.close_session(*s.session);
    SolutionResult out = std::move(r);
    const uint64_t key = s.key;
    live_.erase(key);  // s is gone from here on
    flight_.finish(key, std::move(out));  // admits the next solutions, then calls back
  }

  Gen& gen_;
  Exec& exec_;
  TokenizerOps tok_;
  VerifierConfig cfg_;
  InFlight<SolutionInput, SolutionResult> flight_;  // admission, callbacks
  std::map<uint64_t, std::unique_ptr<SolutionState>> live_;
  long pending_gen_ = 0;
  long pending_exec_ = 0;
};

}  // namespace genprm::prm
