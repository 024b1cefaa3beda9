#pragma once
// The many-problem loop shared by beam search, critic refinement and Best-of-N: problems are
// admitted in input order up to a cap by util/in_flight.hpp's InFlight, each runs as a small
// state machine (a task) that parks itself on a ready queue when an event (generation back,
// scores back) lets it advance, and the loop polls the generator and the scorer between events.
// Torch-free.
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "genprm/search/scorer.hpp"
#include "genprm/util/error.hpp"
#include "genprm/util/in_flight.hpp"

namespace genprm::search {

/// One problem's outcome in a many-problem run (util/in_flight.hpp).
template <typename Result>
using ProblemResult = Outcome<Result>;

namespace detail {

/// What every problem's task has (beam search, refinement and Best-of-N add their own state).
struct TaskBase {
  size_t index = 0;               ///< the problem's input position (its in-flight id)
  bool scoring = false;           ///< waiting for the scorer (else for the generator)
  std::vector<StepScores> scores;  ///< the scorer's answer, when back
  std::exception_ptr failure;
  bool delivered = false;  ///< its result went out (a late duplicate event is ignored)
};

/// Tasks that can advance, in the order their events arrived: filled by callbacks, emptied by
/// the driver loop. Callbacks hold shared pointers, so an aborted run leaves nothing dangling.
template <typename Task>
struct ReadyQueue {
  std::deque<std::shared_ptr<Task>> queue;
};

/// The admission queue of a many-problem run: ids are input positions.
template <typename Problem, typename Result>
using ProblemFlight = InFlight<Problem, ProblemResult<Result>>;

/// Runs `problems` with at most `cap` live at once. `start(index, problem)` makes a problem's
/// task and submits its first work (it parks the task on `ready` when it can advance);
/// `advance(task, flight)` moves a task on and returns true when it is finished (it may
/// `flight.release(task->index)` to give its slot to the next problem early). Task has `index`,
/// `delivered`, `res` (the Result) and `failure` (an exception_ptr). Each finished problem goes
/// to `on_result` in completion order, before the next problem is admitted. `who` names the
/// caller in the idle-engine error.
template <typename Result, typename Task, typename Problem, typename Gen, typename Scorer, typename Start,
          typename Advance>
void run_problems(std::vector<Problem>& problems, size_t cap, Gen& gen, Scorer& scorer,
                  const std::shared_ptr<ReadyQueue<Task>>& ready, Start&& start, Advance&& advance,
                  const std::function<void(ProblemResult<Result>)>& on_result, const char* who) {
  ProblemFlight<Problem, Result> flight(
      cap, [&](uint64_t id, Problem p) { start(static_cast<size_t>(id), std::move(p)); },
      CallbackOrder::BeforeAdmitting);
  for (auto& p : problems) flight.submit(std::move(p), on_result);
  while (!flight.idle()) {
    if (!ready->queue.empty()) {
      auto t = std::move(ready->queue.front());
      ready->queue.pop_front();
      if (t->delivered) continue;
      if (advance(t, flight)) {
        t->delivered = true;
        ProblemResult<Result> r;
        r.index = t->index;
        r.result = std::move(t->res);
        if (t->failure) {
          r.exception = t->failure;
          r.error = error_message(t->failure);
        }
        flight.finish(t->index, std::move(r));
      }
      continue;
    }
    const bool g = gen.poll();
    const bool s = poll_scorer(scorer);
    GENPRM_CHECK(g || s || !ready->queue.empty(),
                 "{}: generator and scorer went idle before the results came back ({} problems live)", who,
                 flight.active());
  }
}

/// Asks `scorer` for the scores of `sols`; the task is parked on `ready` when they are back (or
/// when the batch failed, with `task->failure` set). Uses the optional forms of the StepScorer
/// concept the scorer has (scorer.hpp: fail callback, batch tag).
template <typename Scorer, typename TaskPtr, typename ReadyPtr>
void request_scores(Scorer& scorer, const TaskPtr& t, const ReadyPtr& ready, const std::string& problem,
                    Solutions sols, const BatchTag& tag = {}) {
  ScoreCallback done = [t, ready](std::vector<StepScores> s) {
    t->scores = std::move(s);
    ready->queue.push_back(t);
  };
  ScoreFailCallback fail = [t, ready](std::exception_ptr e) {
    t->failure = e;
    ready->queue.push_back(t);
  };
  score_with(scorer, problem, std::move(sols), std::move(done), std::move(fail), tag);
}

/// The public face the many-problem searches share (CRTP: Derived has start(index, problem,
/// ready), which makes a problem's Task and submits its first work, and advance(task, ready,
/// flight), which moves it on and returns true when it is finished; see run_problems): the
/// generator, scorer and validated options, run_many_async / run_many and run_problem (one
/// problem, its failure thrown with its own type).
template <typename Derived, typename Gen, typename Scorer, typename Options, typename Problem, typename Result,
          typename Task>
class ManyProblems {
 public:
  ManyProblems(Gen& gen, Scorer& scorer, Options opts, const char* who)
      : gen_(gen), scorer_(scorer), opts_(std::move(opts)), who_(who) {
    opts_.validate();
  }

  /// Many problems over the one generator: up to `options().max_problems_in_flight` live at
  /// once, all their requests in the generator together (its continuous batching fills one batch
  /// from all of them); a finished problem makes room for the next in input order. Each problem
  /// runs exactly what the one-problem run does (same requests, seeds and results).
  /// `on_result` receives each problem's outcome as it finishes, in completion order; a failing
  /// problem (generation error, a scorer that throws, fails its batch or answers wrongly)
  /// reports its error there without stopping the others. Scorers: an asynchronous one (with
  /// poll()) gets the score batches of all problems waiting for scores at once, so scoring
  /// overlaps across problems and with generation; a synchronous one is called once per batch
  /// and blocks the loop while it runs; one with score(problem, solutions, done, fail) can fail
  /// only its problem (detail::has_score_or_fail). Exceptions thrown by gen.poll(), the
  /// scorer's poll() or `on_result` itself cannot be pinned on one problem: they end the run.
  void run_many_async(std::vector<Problem> problems, const std::function<void(ProblemResult<Result>)>& on_result) {
    auto ready = std::make_shared<ReadyQueue<Task>>();
    auto& self = static_cast<Derived&>(*this);
    run_problems<Result, Task>(
        problems, static_cast<size_t>(opts_.max_problems_in_flight), gen_, scorer_, ready,
        [&](size_t index, Problem p) { self.start(index, std::move(p), ready); },
        [&](const std::shared_ptr<Task>& t, auto& flight) { return self.advance(t, ready, flight); }, on_result,
        who_);
  }

  /// run_many_async with the outcomes in input order; `on_result` (optional) still sees each
  /// as it finishes.
  std::vector<ProblemResult<Result>> run_many(std::vector<Problem> problems,
                                              const std::function<void(const ProblemResult<Result>&)>& on_result = {}) {
    return outcomes_in_order<Result>(std::move(problems), async(), on_result, who_);
  }

  const Options& options() const { return opts_; }

 protected:
  using TaskPtr = std::shared_ptr<Task>;
  using ReadyPtr = std::shared_ptr<ReadyQueue<Task>>;

  /// One problem through run_many_async: its result, or its failure thrown (its own type).
  Result run_problem(Problem p) { return run_one<Result>(std::move(p), async(), who_); }

  Gen& gen_;
  Scorer& scorer_;
  Options opts_;
  const char* who_;

 private:
  auto async() {
    return [this](std::vector<Problem> ps, const std::function<void(ProblemResult<Result>)>& each) {
      run_many_async(std::move(ps), each);
    };
  }
};

}  // namespace detail
}  // namespace genprm::search
