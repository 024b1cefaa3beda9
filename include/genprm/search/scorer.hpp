#pragma once
// The step-scorer concept used by beam search and critic refinement, and adapters for the
// verifiers of prm/. Torch-free; may include util, engine/request.hpp and the torch-free prm
// headers (prompt.hpp, result.hpp).
//
// StepScorer concept (GenPRM, a Python callable, a test double, a remote PRM):
//   void score(const std::string& problem, std::vector<std::vector<std::string>> solutions,
//              ScoreCallback done);
//       Scores a batch of (partial) solutions, each a list of step texts. `done` receives one
//       StepScores per solution, in order. A synchronous scorer calls `done` before returning;
//       an asynchronous one calls it later from its poll().
//   bool poll();   // optional: drives an asynchronous scorer; false when it has nothing to do.
// Optional richer forms of score() (score_with() uses the richest one a scorer has):
//   void score(problem, solutions, done, ScoreFailCallback fail);   // fail(e): this batch failed
//   void score(problem, solutions, done, fail, const BatchTag& tag); // names and orders the batch
// Search code drives the generator and (when it has poll()) the scorer together until the
// callback has run, so a scorer may share the policy's engine.
#include <algorithm>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "genprm/prm/prompt.hpp"
#include "genprm/prm/result.hpp"
#include "genprm/util/error.hpp"

namespace genprm::search {

/// The scorer's verdict on one (partial) solution.
struct StepScores {
  std::vector<double> rewards;         ///< one per step
  std::vector<std::string> critiques;  ///< optional, one per step (e.g. GenPRM's analysis); may be empty

  static auto fields() {
    return std::make_tuple(field("rewards", &StepScores::rewards), field("critiques", &StepScores::critiques));
  }
};

using ScoreCallback = std::function<void(std::vector<StepScores>)>;
using Solutions = std::vector<std::vector<std::string>>;

/// Reports that one score batch failed; through it only that batch's problem fails (an
/// asynchronous scorer cannot pin an error thrown from its poll() on one problem).
using ScoreFailCallback = std::function<void(std::exception_ptr)>;

/// Names a score batch: `label` names its solutions "<label>:<j>" for a verifier (a problem's
/// id), `rank` orders batches verified together (lower first; the input position).
struct BatchTag {
  std::string label;
  size_t rank = 0;
};

namespace detail {
template <typename S, typename = void>
struct has_score_or_fail : std::false_type {};
template <typename S>
struct has_score_or_fail<S, std::void_t<decltype(std::declval<S&>().score(
                                std::declval<const std::string&>(), std::declval<Solutions>(),
                                std::declval<ScoreCallback>(), std::declval<ScoreFailCallback>()))>>
    : std::true_type {};
template <typename S, typename = void>
struct has_tagged_score : std::false_type {};
template <typename S>
struct has_tagged_score<S, std::void_t<decltype(std::declval<S&>().score(
                               std::declval<const std::string&>(), std::declval<Solutions>(),
                               std::declval<ScoreCallback>(), std::declval<ScoreFailCallback>(),
                               std::declval<const BatchTag&>()))>> : std::true_type {};
using search::ScoreFailCallback;
}  // namespace detail

/// `scorer.score(...)` in the richest form the scorer has (see the concept above).
template <typename S>
void score_with(S& scorer, const std::string& problem, Solutions sols, ScoreCallback done, ScoreFailCallback fail,
                const BatchTag& tag = {}) {
  if constexpr (detail::has_tagged_score<S>::value) {
    scorer.score(problem, std::move(sols), std::move(done), std::move(fail), tag);
  } else if constexpr (detail::has_score_or_fail<S>::value) {
    scorer.score(problem, std::move(sols), std::move(done), std::move(fail));
  } else {
    (void)fail;
    (void)tag;
    scorer.score(problem, std::move(sols), std::move(done));
  }
}

template <typename S, typename = void>
struct has_poll : std::false_type {};
template <typename S>
struct has_poll<S, std::void_t<decltype(std::declval<S&>().poll())>> : std::true_type {};

/// Polls `s` when it is asynchronous; false (nothing to do) for a synchronous scorer.
template <typename S>
bool poll_scorer(S& s) {
  if constexpr (has_poll<S>::value) {
    return static_cast<bool>(s.poll());
  } else {
    (void)s;
    return false;
  }
}

/// Checks a scorer's answer: one StepScores per solution, one reward per step.
inline void check_scores(const char* who, const Solutions& sols, const std::vector<StepScores>& got) {
  GENPRM_CHECK(got.size() == sols.size(), "{}: the scorer returned {} results for {} solutions", who, got.size(),
               sols.size());
  for (size_t i = 0; i < sols.size(); ++i) {
    GENPRM_CHECK(got[i].rewards.size() == sols[i].size(),
                 "{}: the scorer returned {} rewards for solution {} with {} steps", who, got[i].rewards.size(), i,
                 sols[i].size());
    GENPRM_CHECK(got[i].critiques.empty() || got[i].critiques.size() == sols[i].size(),
                 "{}: the scorer returned {} critiques for solution {} with {} steps", who,
                 got[i].critiques.size(), i, sols[i].size());
  }
}

/// A synchronous scorer over a function (a Python callable in the bindings, a lambda in tests).
struct FunctionScorer {
  std::function<std::vector<StepScores>(const std::string&, const Solutions&)> fn;
  void score(const std::string& problem, Solutions sols, ScoreCallback done) { done(fn(problem, sols)); }
};

/// The `<analyze>` part of a GenPRM verification text: after `<analyze>` (and its newline) up to
/// `</analyze>`; the whole text, trimmed, when the markers are absent.
inline std::string analyze_text(const std::string& verification) {
  size_t begin = 0;
  const size_t open = verification.find("<analyze>");
  if (open != std::string::npos) begin = open + 9;
  size_t end = verification.find("</analyze>", begin);
  if (end == std::string::npos) end = verification.size();
  while (begin < end && (verification[begin] == '\n' || verification[begin] == ' ')) ++begin;
  while (end > begin && (verification[end - 1] == '\n' || verification[end - 1] == ' ')) --end;
  return verification.substr(begin, end - begin);
}

/// StepScores of a GenPRM result for a solution of `n_steps` steps: rewards = value, critiques =
/// the analysis of each step's first path (the path the reference keeps). GenPRM drops a trailing
/// empty step (prm::effective_steps, as the reference); such a step gets the previous step's
/// reward (0.5, "no judgement", when it is the only step) and an empty critique. A failed
/// verification throws Error with its message.
inline StepScores to_step_scores(const prm::SolutionResult& r, size_t n_steps) {
  GENPRM_CHECK(r.error.empty(), "scorer: verification of '{}' failed: {}", r.id, r.error);
  StepScores s;
  s.rewards = r.value;
  for (const auto& st : r.steps) s.critiques.push_back(st.paths.empty() ? "" : analyze_text(st.paths.front().text));
  if (s.critiques.size() != s.rewards.size()) s.critiques.clear();
  if (s.rewards.size() + 1 == n_steps) {
    s.rewards.push_back(s.rewards.empty() ? 0.5 : s.rewards.back());
    if (!s.critiques.empty() || n_steps == 1) s.critiques.push_back("");
  }
  return s;
}

template <typename V, typename = void>
struct has_submit : std::false_type {};
template <typename V>
struct has_submit<V, std::void_t<decltype(std::declval<V&>().submit(
                         std::declval<prm::SolutionInput>(), std::function<void(prm::SolutionResult)>()))>>
    : std::true_type {};

/// Options of VerifierScorer's prefix cache.
struct VerifierScorerOptions {
  /// Pass the longest cached verified prefix of each solution as SolutionInput::prior, so only
  /// its new steps are verified (beam search then verifies every step of every beam once, and
  /// earlier steps keep their rewards). false: every solution is verified from scratch.
  bool reuse_prefixes = true;
  /// Results kept, over all problems, least recently used evicted first (0: keep none). Each
  /// holds every step's rationales, so mind the memory with long solutions and large majority.
  size_t max_cached = 1024;
  /// A result verified with a prior replaces the prior's entry (it holds all the prior's steps;
  /// beam search never goes back to a shorter prefix), so the cache holds about one entry per
  /// live beam. false: prefixes stay until evicted (e.g. to re-score shorter prefixes later).
  bool drop_superseded = true;
};

/// What the prefix cache did (cumulative over score() calls).
struct VerifierScorerStats {
  long hits = 0;            ///< solutions verified with a cached prefix as prior
  long misses = 0;          ///< solutions verified from scratch (no cached prefix, or cache off)
  long reused_steps = 0;    ///< steps taken from priors
  long verified_steps = 0;  ///< steps handed to the verifier to verify
  long evictions = 0;       ///< results dropped to stay within max_cached
  long superseded = 0;      ///< results dropped because a longer one replaced them
  size_t cached = 0;        ///< results held now
};

/// A GenPRM verifier as a step scorer. V is either asynchronous (prm::Verifier: submit(input,
/// cb) + poll(); then this scorer is asynchronous too and may share the policy's engine) or
/// synchronous (prm::GenPRM: verify_many(inputs); it runs all solutions of a batch at once on
/// its own engine). Not copyable while a batch is in flight (callbacks refer to it).
///
/// Prefix cache (VerifierScorerOptions): the results it receives are kept per (problem, exact
/// step list), bounded and LRU; a solution whose first k steps were verified before gets that
/// result as `prior` (the longest such k; all its steps: no generation at all). Only results
/// that can serve as a prior are kept (no error, problem and paragraphs recorded), so verifiers
/// that ignore priors work as before. A prior is held by the input that uses it, so dropping it
/// from the cache while a batch is in flight is safe.
template <typename V>
class VerifierScorer {
 public:
  explicit VerifierScorer(V& v, VerifierScorerOptions opts = {}) : v_(&v), opts_(opts) {}

  const VerifierScorerOptions& options() const { return opts_; }
  VerifierScorerStats stats() const {
    VerifierScorerStats s = stats_;
    s.cached = cache_.size();
    return s;
  }
  void clear_cache() { cache_.clear(); }

  void score(const std::string& problem, Solutions sols, ScoreCallback done) {
    score_as("", problem, std::move(sols), std::move(done));
  }

  /// score() with the solutions named "<label>:<j>" (just "<j>" when `label` is empty).
  void score_as(const std::string& label, const std::string& problem, Solutions sols, ScoreCallback done) {
    std::vector<prm::SolutionInput> in;
    std::vector<size_t> counts;
    for (size_t i = 0; i < sols.size(); ++i) {
      counts.push_back(sols[i].size());
      prm::SolutionInput x{label.empty() ? std::to_string(i) : label + ":" + std::to_string(i), problem,
                           std::move(sols[i]), nullptr};
      x.prior = lookup(problem, x.steps);
      const long eff = static_cast<long>(prm::effective_steps(x.steps).size());
      const long reused = x.prior ? static_cast<long>(x.prior->steps.size()) : 0;
      (x.prior ? stats_.hits : stats_.misses) += 1;
      stats_.reused_steps += reused;
      stats_.verified_steps += eff - reused;
      in.push_back(std::move(x));
    }
    if constexpr (has_submit<V>::value) {
      auto batch = std::make_shared<Batch>();
      batch->out.resize(in.size());
      batch->left = in.size();
      batch->done = std::move(done);
      if (in.empty()) return batch->done({});
      for (size_t i = 0; i < in.size(); ++i) {
        v_->submit(std::move(in[i]), [this, batch, i, n = counts[i], problem](prm::SolutionResult r) {
          store(problem, r);
          batch->out[i] = to_step_scores(r, n);
          if (--batch->left == 0) batch->done(std::move(batch->out));
        });
      }
    } else {
      std::vector<StepScores> out;
      const auto results = v_->verify_many(std::move(in));
      GENPRM_CHECK(results.size() == counts.size(), "scorer: {} results for {} solutions", results.size(),
                   counts.size());
      for (size_t i = 0; i < results.size(); ++i) {
        store(problem, results[i]);
        out.push_back(to_step_scores(results[i], counts[i]));
      }
      done(std::move(out));
    }
  }

  /// Drives an asynchronous verifier (no-op, false, for a synchronous one).
  bool poll() {
    if constexpr (has_submit<V>::value) {
      return v_->poll();
    } else {
      return false;
    }
  }

 private:
  struct Batch {
    std::vector<StepScores> out;
    size_t left = 0;
    ScoreCallback done;
  };
  using Key = std::pair<std::string, std::vector<std::string>>;  // (problem, effective steps)
  struct Entry {
    std::shared_ptr<const prm::SolutionResult> result;
    uint64_t used = 0;
  };

  /// The cached result of the longest prefix of `steps` (GenPRM's effective steps), or null.
  std::shared_ptr<const prm::SolutionResult> lookup(const std::string& problem, const std::vector<std::string>& steps) {
    if (!opts_.reuse_prefixes || cache_.empty()) return nullptr;
    const std::vector<std::string> eff = prm::effective_steps(steps);
    Key key{problem, {}};
    for (size_t k = eff.size(); k >= 1; --k) {
      key.second.assign(eff.begin(), eff.begin() + static_cast<long>(k));
      auto it = cache_.find(key);
      if (it != cache_.end()) {
        it->second.used = ++clock_;
        return it->second.result;
      }
    }
    return nullptr;
  }

  /// Keeps `r` when it can serve as a prior later.
  void store(const std::string& problem, const prm::SolutionResult& r) {
    if (!opts_.reuse_prefixes || opts_.max_cached == 0) return;
    if (!r.error.empty() || r.problem != problem || r.steps.empty() || r.value.size() != r.steps.size()) return;
    Key key{problem, {}};
    for (const auto& st : r.steps) {
      if (st.paths.empty()) return;
      key.second.push_back(st.paragraph);
    }
    if (opts_.drop_superseded && r.reused_steps > 0 && static_cast<size_t>(r.reused_steps) < key.second.size()) {
      Key prior{problem, std::vector<std::string>(key.second.begin(), key.second.begin() + r.reused_steps)};
      stats_.superseded += static_cast<long>(cache_.erase(prior));
    }
    auto& e = cache_[key];
    e.result = std::make_shared<const prm::SolutionResult>(r);
    e.used = ++clock_;
    while (cache_.size() > opts_.max_cached) {
      auto oldest = std::min_element(cache_.begin(), cache_.end(),
                                     [](const auto& a, const auto& b) { return a.second.used < b.second.used; });
      cache_.erase(oldest);
      stats_.evictions += 1;
    }
  }

  V* v_;
  VerifierScorerOptions opts_;
  std::map<Key, Entry> cache_;
  uint64_t clock_ = 0;
  VerifierScorerStats stats_;
};

}  // namespace genprm::search
