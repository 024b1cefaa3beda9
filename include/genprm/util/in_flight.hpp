#pragma once
// Many items in flight: the one driver behind the GenPRM verifier, the RPE labeler and solution
// sampler, and the many-problem searches (beam search, refinement, Best-of-N).
//
// `InFlight<Input, Result>`: items are submitted (any number, at any time) and admitted in
// submission order while fewer than `cap` hold a slot; `start(id, input)` begins an admitted
// item, which ends with `finish(id, result)`: its slot is freed, the next items are admitted and
// its own callback gets the result (in the order CallbackOrder says). An item may give its slot back before its result is
// ready (`release`, e.g. a Best-of-N problem whose generation is back while it waits for its
// scores). The owner polls whatever does the work (a generator, a scorer) until idle().
//
// Around it: `Outcome<Result>` (one item's result or its failure, so a failing item does not
// stop the others), `InOrder` / `run_all_in_order` (results in input order while a callback sees
// each as it finishes), `run_one` (one item, its failure rethrown with its own type).
// Torch-free; includes nothing else from genprm.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "genprm/util/error.hpp"

namespace genprm {

/// The message of a failure (what() of a std::exception, else "unknown error").
inline std::string error_message(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown error";
  }
}

/// One item's outcome in a many-item run.
template <typename Result>
struct Outcome {
  size_t index = 0;               ///< position in the input
  Result result;                  ///< partial when the item failed
  std::string error;              ///< the failure's message; empty on success
  std::exception_ptr exception;   ///< the failure itself (rethrow to keep its type)
  bool ok() const { return error.empty(); }
};

/// When a finished item's callback runs: after the next items were admitted (their first work is
/// already submitted; the verifier and the RPE drivers), or before (the many-problem searches: a
/// result goes out before the next problem starts, and an exception from the callback ends the
/// run without admitting anything).
enum class CallbackOrder { AfterAdmitting, BeforeAdmitting };

/// The admission queue (see the header comment). Not copyable: `start` usually refers to its owner.
template <typename Input, typename Result>
class InFlight {
 public:
  using Callback = std::function<void(Result)>;
  using Start = std::function<void(uint64_t id, Input input)>;

  /// `start(id, input)` begins an admitted item; ids count submissions from 0. An exception from
  /// `start` propagates to whoever caused the admission (submit, release, finish); the item is
  /// dropped and its slot freed.
  InFlight(size_t cap, Start start, CallbackOrder order = CallbackOrder::AfterAdmitting)
      : cap_(cap), start_(std::move(start)), order_(order) {
    GENPRM_CHECK_ARG(cap_ > 0, "in flight: the cap must be positive");
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

  /// Queues an item and admits what fits; returns its id.
  uint64_t submit(Input input, Callback on_done) {
    const uint64_t id = next_id_++;
    queue_.push_back({id, std::move(input), std::move(on_done)});
    admit();
    return id;
  }

  /// Frees the slot of an admitted item whose result is still to come, and admits the next.
  void release(uint64_t id) {
    auto it = active_.find(id);
    if (it == active_.end() || !it->second.holds) return;
    it->second.holds = false;
    --holding_;
    admit();
  }

  /// Ends an admitted item: frees its slot (unless released), admits the next items and hands
  /// `result` to its callback (CallbackOrder). A second finish of the same id is ignored.
  void finish(uint64_t id, Result result) {
    auto it = active_.find(id);
    if (it == active_.end()) return;
    Callback cb = std::move(it->second.on_done);
    if (it->second.holds) --holding_;
    active_.erase(it);
    if (order_ == CallbackOrder::BeforeAdmitting && cb) cb(std::move(result));
    admit();
    if (order_ == CallbackOrder::AfterAdmitting && cb) cb(std::move(result));
  }

  bool active(uint64_t id) const { return active_.count(id) != 0; }
  size_t active() const { return active_.size(); }  ///< admitted, not finished
  size_t holding() const { return holding_; }       ///< admitted and holding a slot
  size_t queued() const { return queue_.size(); }
  bool idle() const { return active_.empty() && queue_.empty(); }
  size_t cap() const { return cap_; }

 private:
  struct Waiting {
    uint64_t id;
    Input input;
    Callback on_done;
  };
  struct Active {
    Callback on_done;
    bool holds = true;
  };

  /// Starts queued items in order while slots are free. Re-entrant calls (an item that finishes
  /// or releases inside its own start) leave the admitting to the outer loop.
  void admit() {
    if (admitting_) return;
    admitting_ = true;
    while (!queue_.empty() && holding_ < cap_) {
      Waiting w = std::move(queue_.front());
      queue_.pop_front();
      active_.emplace(w.id, Active{std::move(w.on_done), true});
      ++holding_;
      try {
        start_(w.id, std::move(w.input));
      } catch (...) {
        auto it = active_.find(w.id);
        if (it != active_.end()) {
          if (it->second.holds) --holding_;
          active_.erase(it);
        }
        admitting_ = false;
        throw;
      }
    }
    admitting_ = false;
  }

  size_t cap_;
  Start start_;
  CallbackOrder order_;
  std::deque<Waiting> queue_;
  std::map<uint64_t, Active> active_;
  size_t holding_ = 0;
  uint64_t next_id_ = 0;
  bool admitting_ = false;
};

/// Results by input index, handed back in input order once all are in.
template <typename Result>
class InOrder {
 public:
  InOrder(size_t n, const char* who) : out_(n), who_(who) {}
  void put(size_t index, Result r) { out_.at(index) = std::move(r); }
  /// The results; Error naming the caller and the index when one never came.
  std::vector<Result> take() {
    std::vector<Result> res;
    res.reserve(out_.size());
    for (size_t i = 0; i < out_.size(); ++i) {
      GENPRM_CHECK(out_[i].has_value(), "{}: item {} did not finish", who_, i);
      res.push_back(std::move(*out_[i]));
    }
    return res;
  }

 private:
  std::vector<std::optional<Result>> out_;
  const char* who_;
};

/// Submits every input (`submit(input, callback)`), runs `run()` until all are done, and returns
/// the results in input order; `on_result(index, result)` (optional) sees each as it finishes
/// (e.g. to append it to a file at once).
template <typename Result, typename Input, typename Submit, typename Run>
std::vector<Result> run_all_in_order(std::vector<Input> inputs, Submit&& submit, Run&& run,
                                     const std::function<void(size_t, const Result&)>& on_result,
                                     const char* who) {
  InOrder<Result> out(inputs.size(), who);
  for (size_t i = 0; i < inputs.size(); ++i) {
    submit(std::move(inputs[i]), [&out, &on_result, i](Result r) {
      if (on_result) on_result(i, r);
      out.put(i, std::move(r));
    });
  }
  run();
  return out.take();
}

/// `run_async(inputs, on_each)` (on_each gets an Outcome with its index) with the outcomes
/// returned in input order; `on_result` (optional) still sees each as it finishes.
template <typename Result, typename Input, typename RunAsync>
std::vector<Outcome<Result>> outcomes_in_order(std::vector<Input> inputs, RunAsync&& run_async,
                                               const std::function<void(const Outcome<Result>&)>& on_result,
                                               const char* who) {
  InOrder<Outcome<Result>> out(inputs.size(), who);
  run_async(std::move(inputs), [&](Outcome<Result> r) {
    if (on_result) on_result(r);
    const size_t i = r.index;
    out.put(i, std::move(r));
  });
  return out.take();
}

/// One input through `run_async(inputs, on_each)`: its result, or its failure rethrown with its
/// own type.
template <typename Result, typename Input, typename RunAsync>
Result run_one(Input input, RunAsync&& run_async, const char* who) {
  std::optional<Outcome<Result>> got;
  std::vector<Input> one;
  one.push_back(std::move(input));
  run_async(std::move(one), [&](Outcome<Result> r) { got = std::move(r); });
  GENPRM_CHECK(got.has_value(), "{}: the item ended without a result", who);
  if (got->exception) std::rethrow_exception(got->exception);
  return std::move(got->result);
}

}  // namespace genprm
