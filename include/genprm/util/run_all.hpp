#pragma once
// Runs a batch through an asynchronous driver (rpe's Labeler and SolutionSampler, search's
// drivers, ...): everything is submitted at once, the driver runs until idle, and the results
// come back in input order while `on_result(index, result)` sees each as it finishes (so a job
// can append it to a file at once).
//
// Driver: submit(Input, std::function<void(Result)>) and run_until_idle().
#include <cstddef>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "genprm/util/error.hpp"

namespace genprm {

template <typename Result, typename Driver, typename Input>
std::vector<Result> run_all_in_order(Driver& driver, std::vector<Input> inputs,
                                     const std::function<void(size_t, const Result&)>& on_result,
                                     const char* who) {
  std::vector<std::optional<Result>> out(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    driver.submit(std::move(inputs[i]), [&out, &on_result, i](Result r) {
      if (on_result) on_result(i, r);
      out[i] = std::move(r);
    });
  }
  driver.run_until_idle();
  std::vector<Result> res;
  res.reserve(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    GENPRM_CHECK(out[i].has_value(), "{}: item {} did not finish", who, i);
    res.push_back(std::move(*out[i]));
  }
  return res;
}

}  // namespace genprm
