#pragma once
// A synchronous GenPRM verifier as a step scorer batched ACROSS problems, for the many-problem
// searches (beam search, refinement, Best-of-N) when the verifier runs on its own engine.
// Torch-free.
//
// V: std::vector<prm::SolutionResult> verify_many(std::vector<prm::SolutionInput>) (prm::GenPRM;
// the bindings wrap it to release the GIL and take its lock, or call a Python verifier).
//
// score() only queues a problem's batch (through a VerifierScorer, so its prefix cache applies);
// poll() verifies everything queued in ONE verify_many once the policy has nothing left to
// decode (`busy()` is false: every live problem waits for its scores) or once `max_waiting`
// solutions wait (0: only when idle). Batches are verified in BatchTag::rank order (then
// submission order). A failed verification fails only its problem (ScoreFailCallback).
#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "genprm/prm/prompt.hpp"
#include "genprm/prm/result.hpp"
#include "genprm/search/scorer.hpp"
#include "genprm/util/error.hpp"

namespace genprm::search {

template <typename V>
class BatchVerifierScorer {
 public:
  /// `busy()`: true while the policy still has work (more problems' batches may join).
  BatchVerifierScorer(V& v, std::function<bool()> busy, VerifierScorerOptions cache = {}, size_t max_waiting = 0)
      : v_(v), busy_(std::move(busy)), max_waiting_(max_waiting), inner_(queue_, cache) {}
  BatchVerifierScorer(const BatchVerifierScorer&) = delete;
  BatchVerifierScorer& operator=(const BatchVerifierScorer&) = delete;

  void score(const std::string& problem, Solutions sols, ScoreCallback done, ScoreFailCallback fail,
             const BatchTag& tag) {
    enqueue(problem, std::move(sols), std::move(done), std::move(fail), tag);
  }
  /// Untagged batches are verified in the order they came.
  void score(const std::string& problem, Solutions sols, ScoreCallback done, ScoreFailCallback fail) {
    enqueue(problem, std::move(sols), std::move(done), std::move(fail), BatchTag{"", pending_.size()});
  }

  /// Verifies the queued batches when the policy is idle or enough solutions wait; true while
  /// batches are queued.
  bool poll() {
    if (pending_.empty()) return false;
    if (busy_() && (max_waiting_ == 0 || queue_.items.size() < max_waiting_)) return true;
    auto items = std::move(queue_.items);
    queue_.items.clear();
    auto batches = std::move(pending_);
    pending_.clear();
    std::stable_sort(items.begin(), items.end(),
                     [&](const Item& a, const Item& b) { return batches[a.batch]->rank < batches[b.batch]->rank; });
    std::vector<std::exception_ptr> failed(batches.size());
    if (!items.empty()) {
      std::vector<prm::SolutionInput> in;
      for (auto& it : items) in.push_back(std::move(it.in));
      std::vector<prm::SolutionResult> out;
      try {
        out = v_.verify_many(std::move(in));
        GENPRM_CHECK(out.size() == items.size(), "scorer: {} results for {} solutions", out.size(), items.size());
      } catch (...) {
        for (auto& f : failed) f = std::current_exception();
      }
      for (size_t k = 0; k < out.size() && k < items.size(); ++k) {
        if (failed[items[k].batch]) continue;
        try {
          items[k].cb(std::move(out[k]));
        } catch (...) {  // a failed verification: its problem fails, the others go on
          failed[items[k].batch] = std::current_exception();
        }
      }
    }
    for (size_t j = 0; j < batches.size(); ++j)
      if (failed[j] && !batches[j]->finished) batches[j]->fail(failed[j]);
    return true;
  }

  VerifierScorerStats stats() const { return inner_.stats(); }

 private:
  void enqueue(const std::string& problem, Solutions sols, ScoreCallback done, ScoreFailCallback fail,
               const BatchTag& tag) {
    auto pd = std::make_shared<Pending>();
    pd->fail = std::move(fail);
    pd->rank = tag.rank;
    queue_.batch = pending_.size();
    pending_.push_back(pd);
    inner_.score_as(tag.label, problem, std::move(sols), [pd, done = std::move(done)](std::vector<StepScores> s) {
      pd->finished = true;
      done(std::move(s));
    });
  }

  struct Item {
    prm::SolutionInput in;
    std::function<void(prm::SolutionResult)> cb;
    size_t batch;
  };
  /// The asynchronous verifier interface (submit + poll) VerifierScorer drives: only queues.
  struct Queue {
    std::vector<Item> items;
    size_t batch = 0;  ///< the score batch being submitted
    void submit(prm::SolutionInput in, std::function<void(prm::SolutionResult)> cb) {
      items.push_back({std::move(in), std::move(cb), batch});
    }
    bool poll() { return false; }
  };
  struct Pending {
    ScoreFailCallback fail;
    size_t rank = 0;
    bool finished = false;
  };

  V& v_;
  std::function<bool()> busy_;
  size_t max_waiting_;
  Queue queue_;
  VerifierScorer<Queue> inner_;
  std::vector<std::shared_ptr<Pending>> pending_;
};

}  // namespace genprm::search
