#pragma once
// The many-problem loop shared by beam search and critic refinement: problems are admitted up
// to a cap in input order, each runs as a small state machine (a task) that parks itself on a
// ready queue when an event (generation back, scores back) lets it advance, and the loop polls
// the generator and the scorer between events. Torch-free.
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "genprm/search/scorer.hpp"
#include "genprm/util/error.hpp"

namespace genprm::search {

/// One problem's outcome in a many-problem run.
template <typename Result>
struct ProblemResult {
  size_t index = 0;               ///< position in the input
  Result result;
  std::string error;              ///< the failure's message; empty on success
  std::exception_ptr exception;   ///< the failure itself (rethrow to keep its type)
  bool ok() const { return error.empty(); }
};

namespace detail {

inline std::string error_message(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown error";
  }
}

/// Tasks that can advance, in the order their events arrived.
template <typename Task>
struct ReadyQueue {
  std::deque<std::shared_ptr<Task>> queue;
};

/// Runs `problems` with at most `cap` live at once. `start(index, problem)` makes a problem's
/// task and submits its first work (it parks the task on `ready` when it can advance);
/// `advance(task)` moves a task on and returns true when it is finished. Task has `index`,
/// `delivered`, `res` (the Result) and `failure` (an exception_ptr). Each finished problem goes
/// to `on_result` in completion order. `who` names the caller in the idle-engine error.
template <typename Result, typename Task, typename Problem, typename Gen, typename Scorer, typename Start,
          typename Advance>
void run_problems(std::vector<Problem>& problems, size_t cap, Gen& gen, Scorer& scorer,
                  const std::shared_ptr<ReadyQueue<Task>>& ready, Start&& start, Advance&& advance,
                  const std::function<void(ProblemResult<Result>)>& on_result, const char* who) {
  size_t next = 0, active = 0;
  while (next < problems.size() || active > 0) {
    while (active < cap && next < problems.size()) {
      start(next, std::move(problems[next]));
      ++next;
      ++active;
    }
    if (!ready->queue.empty()) {
      auto t = std::move(ready->queue.front());
      ready->queue.pop_front();
      if (t->delivered) continue;
      if (advance(t)) {
        t->delivered = true;
        --active;
        ProblemResult<Result> r;
        r.index = t->index;
        r.result = std::move(t->res);
        if (t->failure) {
          r.exception = t->failure;
          r.error = error_message(t->failure);
        }
        on_result(std::move(r));
      }
      continue;
    }
    const bool g = gen.poll();
    const bool s = poll_scorer(scorer);
    GENPRM_CHECK(g || s || !ready->queue.empty(),
                 "{}: generator and scorer went idle before the results came back ({} problems live)", who, active);
  }
}

/// One problem through `run_async(problems, on_each)`: its result, or its failure rethrown with
/// its own type.
template <typename Result, typename Problem, typename RunAsync>
Result run_one(Problem problem, RunAsync&& run_async, const char* who) {
  std::optional<ProblemResult<Result>> got;
  std::vector<Problem> one;
  one.push_back(std::move(problem));
  run_async(std::move(one), [&](ProblemResult<Result> r) { got = std::move(r); });
  GENPRM_CHECK(got.has_value(), "{}: the problem ended without a result", who);
  if (got->exception) std::rethrow_exception(got->exception);
  return std::move(got->result);
}

/// `run_async(problems, on_each)` with the outcomes returned in input order; `on_result`
/// (optional) still sees each as it finishes.
template <typename Result, typename Problem, typename RunAsync>
std::vector<ProblemResult<Result>> in_input_order(std::vector<Problem> problems, RunAsync&& run_async,
                                                  const std::function<void(const ProblemResult<Result>&)>& on_result,
                                                  const char* who) {
  std::vector<std::optional<ProblemResult<Result>>> out(problems.size());
  run_async(std::move(problems), [&](ProblemResult<Result> r) {
    if (on_result) on_result(r);
    const size_t i = r.index;
    out[i] = std::move(r);
  });
  std::vector<ProblemResult<Result>> res;
  res.reserve(out.size());
  for (auto& r : out) {
    GENPRM_CHECK(r.has_value(), "{}: a problem ended without a result", who);
    res.push_back(std::move(*r));
  }
  return res;
}

}  // namespace detail
}  // namespace genprm::search
