// genprm._core rpe functions: the pure label math and the Labeler / SolutionSampler
// (include/genprm/rpe) driving a Python Engine's C++ engine directly; options and results are
// bound structs (bound.hpp). python/genprm/rpe.py wraps them.
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common.hpp"
#include "bound.hpp"
#include "py_engine.hpp"
#include "genprm/rpe/rpe.hpp"

namespace genprm::bindings {
namespace {

/// The engine tokenizer's chat template with the generation prompt: [system?, user = problem].
rpe::PromptRenderer renderer(PyEngine& e, const std::optional<std::string>& system) {
  const Tokenizer* tok = e.tokenizer();
  if (tok == nullptr) return {};
  return [tok, system](const std::string& problem) {
    return tok->apply_chat_template(problem_conversation(problem, system), true);
  };
}

/// Fails early (ValueError) when some row needs the chat template and it cannot be rendered.
void check_renderer(const rpe::PromptRenderer& render, bool needed) {
  if (!needed) return;
  GENPRM_CHECK_ARG(static_cast<bool>(render),
                   "engine: it has no tokenizer to render the chat prompt; pass pre-rendered prompts (prompt=...)");
  (void)render("probe");  // an unknown template family throws ValueError saying what to do
}

/// Runs `run(each)` without the GIL; `each(index, result)` hands every finished result to the
/// Python `on_result(index, result)` (when given). An exception from `on_result` lets the run
/// finish (the engine holds callbacks into it) and is re-raised afterwards.
template <typename Result, typename Run>
std::vector<Result> run_reporting(Run&& run, const py::object& on_result) {
  std::exception_ptr failed;
  const std::function<void(size_t, const Result&)> each = [&](size_t i, const Result& r) {
    if (on_result.is_none() || failed) return;
    py::gil_scoped_acquire gil;
    try {
      on_result(i, r);
    } catch (...) {
      failed = std::current_exception();
    }
  };
  std::vector<Result> out;
  {
    py::gil_scoped_release nogil;
    out = run(each);
  }
  if (failed) std::rethrow_exception(failed);
  return out;
}

using LabelRow = std::tuple<std::string, std::string, std::vector<std::string>, std::string, std::string,
                            std::optional<double>>;
using SampleRow = std::tuple<std::string, std::string, std::string, std::string>;

}  // namespace

void bind_rpe(py::module_& m) {
  bind_struct<rpe::KRule>(m, "KRule", "Dynamic K from MC(s_1): k_low below `low`, k_mid below `high`, else k_high.");
  bind_struct<rpe::LabelConfig>(m, "LabelConfig", "RPE threshold epsilon on P_t and the difference variant's.");
  bind_struct<rpe::RolloutParams>(m, "RolloutParams", "How rollouts are sampled (policy side).");
  bind_struct<rpe::AdaptiveMC>(m, "AdaptiveMC",
                               "Adaptive Monte Carlo: rollouts in rounds, an estimate stops once its decision is "
                               "settled (error at most delta each); off by default.");
  bind_struct<rpe::LabelerConfig>(m, "LabelerConfig", "Options of RPE labelling (fixed_k 0: the dynamic rule).");
  bind_struct<rpe::SamplerConfig>(m, "SamplerConfig", "Options of step-forced solution sampling.");
  bind_struct<rpe::StepLabels>(m, "StepLabels", "Labels of one step from its MC estimates.");
  bind_struct<rpe::StepResult>(m, "RPEStepResult", "One labelled step.");
  bind_struct<rpe::LabelResult>(m, "LabelResult", "MC estimates and labels of one solution.");
  bind_struct<rpe::SampledSolution>(m, "SampledSolution", "One solution sampled with step forcing.");
  bind_struct<rpe::SampleResult>(m, "SampleResult", "The solutions sampled for one problem.");

  m.def("rpe_compute_labels", &rpe::compute_labels, py::arg("mc"), py::arg("mc_first"), py::arg("config"),
        "Labels of every step from MC estimates.");
  m.def("rpe_rollout_prefix", &rpe::rollout_prefix, py::arg("steps"), py::arg("step"),
        "The assistant text step `step`'s rollouts continue from (rpe/steps.hpp rollout_prefix).");
  m.def("rpe_k_for", [](const rpe::KRule& r, double mc_first) { return r.k_for(mc_first); }, py::arg("rule"),
        py::arg("mc_first"));

  m.def(
      "rpe_label",
      [](PyEngine& e, const std::vector<LabelRow>& rows, const rpe::LabelerConfig& cfg,
         const std::optional<std::string>& system, py::object on_result) {
        rpe::PromptRenderer render = renderer(e, system);
        std::vector<rpe::LabelInput> in;
        bool need_render = false;
        for (const auto& [id, problem, steps, answer, prompt, mc_first] : rows) {
          GENPRM_CHECK_ARG(!steps.empty(), "steps: the solution '{}' has no step", id);
          GENPRM_CHECK_ARG(!answer.empty(), "answer: the ground truth of '{}' is empty", id);
          in.push_back({id, problem, steps, answer, prompt, mc_first});
          need_render = need_render || prompt.empty();
        }
        check_renderer(render, need_render);
        rpe::Labeler<Engine> lab(e.engine(), render, cfg);
        return run_reporting<rpe::LabelResult>(
            [&](const auto& each) { return lab.label_many(std::move(in), each); }, on_result);
      },
      py::arg("engine"), py::arg("rows"), py::arg("config"), py::arg("system_prompt") = py::none(),
      py::arg("on_result") = py::none(),
      "Labels (id, problem, steps, answer, prompt, mc_first or None) rows over engine's C++ engine; on_result(index, result) "
      "runs as each finishes; returns the results in input order.");

  m.def(
      "rpe_sample",
      [](PyEngine& e, const std::vector<SampleRow>& rows, const rpe::SamplerConfig& cfg,
         const std::optional<std::string>& system, py::object on_result) {
        rpe::PromptRenderer render = renderer(e, system);
        std::vector<rpe::SampleInput> in;
        bool need_render = false;
        for (const auto& [id, problem, answer, prompt] : rows) {
          in.push_back({id, problem, answer, prompt});
          need_render = need_render || prompt.empty();
        }
        check_renderer(render, need_render);
        rpe::SolutionSampler<Engine> sampler(e.engine(), render, cfg);
        return run_reporting<rpe::SampleResult>(
            [&](const auto& each) { return sampler.sample_many(std::move(in), each); }, on_result);
      },
      py::arg("engine"), py::arg("rows"), py::arg("config"), py::arg("system_prompt") = py::none(),
      py::arg("on_result") = py::none(),
      "Samples n step-forced solutions per (id, problem, answer, prompt) row; results in input order.");
}

}  // namespace genprm::bindings
