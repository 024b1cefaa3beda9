// genprm._core.GenPRMCore: the C++ GenPRM (engine + sandbox + tokenizer + verifier), its options
// and its results as bound structs (bound.hpp); python/genprm/prm.py wraps it.
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "bound.hpp"
#include "common.hpp"
#include "genprm/prm/genprm.hpp"
#include "py_genprm.hpp"

namespace genprm::bindings {
namespace {

using prm::GenPRM;
using prm::GenPRMOptions;
using prm::SolutionResult;
using Handle = PyGenPRM;

std::shared_ptr<const SolutionResult> prior_ptr(const std::optional<SolutionResult>& p) {
  return p ? std::make_shared<const SolutionResult>(*p) : nullptr;
}

/// Runs f(g) with the GIL released and the GenPRM's lock held.
template <typename F>
auto locked(Handle& h, F&& f) {
  py::gil_scoped_release nogil;
  std::lock_guard<std::mutex> lock(h.mu);
  return f(*h.g);
}

}  // namespace

void bind_prm(py::module_& m) {
  bind_struct<prm::VerifierConfig>(m, "VerifierConfig",
                                   "GenPRM verifier options; every default is the reference implementation's.");
  bind_struct<GenPRMOptions>(m, "GenPRMOptions", "device, dtype and the verifier, engine and sandbox options.");
  bind_struct<prm::CodeRun>(m, "CodeRun", "One code block of a rationale and what running it printed.");
  bind_struct<prm::PathResult>(m, "PathResult", "One rationale of a step: reward, judgement, text, code runs.");
  bind_struct<prm::StepResult>(m, "StepResult", "One verified step: its reward (mean over paths) and paths.");
  bind_struct<prm::VerificationTime>(m, "VerificationTime", "Wall-clock seconds of one verification call.");
  auto result = bind_struct<SolutionResult>(m, "SolutionResult",
                                            "The verification of one solution (genprm.VerificationResult).");
  result.attr("PRIOR_KEYS") = py::tuple(py::cast(std::vector<std::string>(std::begin(prm::kPriorKeys),
                                                                          std::end(prm::kPriorKeys))));
  result.attr("PRIOR_STEP_KEYS") = py::tuple(py::cast(
      std::vector<std::string>(std::begin(prm::kPriorStepKeys), std::end(prm::kPriorStepKeys))));

  using Row = std::tuple<std::string, std::string, std::vector<std::string>>;
  py::class_<Handle>(m, "GenPRMCore",
                     "GenPRM verifier over the engine, sandbox and tokenizer of one checkpoint directory "
                     "(use genprm.GenPRM).")
      .def(py::init([](const std::string& model_dir, GenPRMOptions o) {
             o.validate();
             py::gil_scoped_release nogil;
             auto h = std::make_unique<Handle>();
             h->g = std::make_unique<GenPRM>(model_dir, std::move(o));
             return h;
           }),
           py::arg("model_dir"), py::arg("options"))
      .def(
          "verify",
          [](Handle& h, const std::string& id, const std::string& problem, const std::vector<std::string>& steps,
             const std::optional<SolutionResult>& prior) {
            prm::SolutionInput in{id, problem, steps, prior_ptr(prior)};
            return locked(h, [&](GenPRM& g) { return g.verify(std::move(in)); });
          },
          py::arg("id"), py::arg("problem"), py::arg("steps"), py::arg("prior") = py::none(),
          "Verifies one solution. prior: an earlier result of a prefix of the steps (only the steps after it "
          "are verified).")
      .def(
          "verify_many",
          [](Handle& h, const std::vector<Row>& rows, py::object on_result,
             const std::vector<std::optional<SolutionResult>>& priors) {
            GENPRM_CHECK_ARG(priors.empty() || priors.size() == rows.size(),
                             "verify_many: {} priors for {} rows", priors.size(), rows.size());
            std::vector<prm::SolutionInput> in;
            in.reserve(rows.size());
            for (size_t i = 0; i < rows.size(); ++i) {
              const auto& [id, problem, steps] = rows[i];
              in.push_back({id, problem, steps, priors.empty() ? nullptr : prior_ptr(priors[i])});
            }
            return locked(h, [&](GenPRM& g) {
              return g.verify_many(std::move(in), [&](size_t i, const SolutionResult& r) {
                if (on_result.is_none()) return;
                py::gil_scoped_acquire gil;
                on_result(i, r);
              });
            });
          },
          py::arg("rows"), py::arg("on_result") = py::none(), py::arg("priors") = std::vector<std::optional<SolutionResult>>{},
          "Verifies (id, problem, steps) rows with many in flight; on_result(index, result) runs as each "
          "finishes; returns the results in input order.")
      .def("engine_stats", [](Handle& h) { return fields_dict(locked(h, [](GenPRM& g) { return g.engine_stats(); })); })
      .def_property(
          "search_prefix_cache",
          [](Handle& h) {
            std::lock_guard<std::mutex> lock(h.mu);
            return h.scorer_options.reuse_prefixes;
          },
          [](Handle& h, bool on) {
            std::lock_guard<std::mutex> lock(h.mu);
            h.scorer_options.reuse_prefixes = on;
          },
          "Search bindings pass cached verified prefixes as priors (VerifierScorerOptions::reuse_prefixes).")
      .def_property_readonly("options", [](const Handle& h) { return h.g->options(); })
      .def_property_readonly("sandbox_started",
                             [](Handle& h) { return locked(h, [](GenPRM& g) { return g.sandbox().started(); }); });
}

}  // namespace genprm::bindings
