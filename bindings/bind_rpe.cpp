// genprm._core rpe functions: the pure label math and the Labeler /
// SolutionSampler (include/genprm/rpe) driving a Python Engine's C++ engine directly. Results
// cross as JSON text (json.loads on the Python side); python/genprm/rpe.py wraps them.
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common.hpp"
#include "options.hpp"
#include "py_engine.hpp"
#include "genprm/rpe/rpe.hpp"

namespace genprm::bindings {
namespace {

std::vector<Setter> rollout_setters(rpe::RolloutParams& r, std::optional<uint64_t>& seed, int& in_flight,
                                    std::string& step_prefix, std::optional<std::string>& system) {
  return {field("temperature", r.temperature), field("top_p", r.top_p), field("top_k", r.top_k),
          field("max_tokens", r.max_tokens), field("stop", r.stop),
          {"seed", [&seed](const py::object& o) { seed = o.cast<uint64_t>(); }},
          field("max_problems_in_flight", in_flight), field("step_prefix", step_prefix),
          {"system_prompt", [&system](const py::object& o) { system = o.cast<std::string>(); }}};
}

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

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

/// Runs `run(each)` without the GIL; `each(index, result)` hands every finished result to the
/// Python `on_result(index, json_text)` (when given). An exception from `on_result` lets the run
/// finish (the engine holds callbacks into it) and is re-raised afterwards. Returns the JSON
/// texts in input order.
template <typename Result, typename Run>
std::vector<std::string> run_as_json(Run&& run, const py::object& on_result) {
  std::exception_ptr failed;
  const std::function<void(size_t, const Result&)> each = [&](size_t i, const Result& r) {
    if (on_result.is_none() || failed) return;
    std::string text = dump(rpe::to_json(r));
    py::gil_scoped_acquire gil;
    try {
      on_result(i, text);
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
  std::vector<std::string> res;
  res.reserve(out.size());
  for (const auto& r : out) res.push_back(dump(rpe::to_json(r)));
  return res;
}

using LabelRow = std::tuple<std::string, std::string, std::vector<std::string>, std::string, std::string>;
using SampleRow = std::tuple<std::string, std::string, std::string, std::string>;

}  // namespace

void bind_rpe(py::module_& m) {
  m.def(
      "rpe_compute_labels",
      [](const std::vector<double>& mc, double mc_first, double epsilon, double difference_epsilon) {
        auto labels = rpe::compute_labels(mc, mc_first, rpe::LabelConfig{epsilon, difference_epsilon});
        Json out = Json::array();
        for (const auto& l : labels)
          out.push_back(Json{{"mc", l.mc}, {"mc_prev", l.mc_prev}, {"propagated", l.propagated},
                             {"progress", rpe::finite_or_null(l.progress)}, {"label", l.label ? 1 : 0},
                             {"hard_label", l.hard_label ? 1 : 0}, {"difference", l.difference},
                             {"difference_label", l.difference_label ? 1 : 0}});
        return dump(out);
      },
      py::arg("mc"), py::arg("mc_first"), py::arg("epsilon") = 0.8, py::arg("difference_epsilon") = 0.0,
      "Labels of every step from MC estimates (JSON list, one object per step).");
  m.def(
      "rpe_k_for",
      [](double mc_first, double low, double high, int k_low, int k_mid, int k_high) {
        rpe::KRule r{low, high, k_low, k_mid, k_high};
        r.validate();
        return r.k_for(mc_first);
      },
      py::arg("mc_first"), py::arg("low") = 0.1, py::arg("high") = 0.9, py::arg("k_low") = 128,
      py::arg("k_mid") = 64, py::arg("k_high") = 32);

  m.def(
      "rpe_label",
      [](PyEngine& e, const std::vector<LabelRow>& rows, const py::dict& options, py::object on_result) {
        rpe::LabelerConfig cfg;
        std::optional<std::string> system;
        std::vector<Setter> s = rollout_setters(cfg.rollout, cfg.seed, cfg.max_problems_in_flight, cfg.step_prefix, system);
        s.push_back(field("epsilon", cfg.labels.epsilon));
        s.push_back(field("difference_epsilon", cfg.labels.difference_epsilon));
        s.push_back(field("k", cfg.fixed_k));
        s.push_back(field("first_k", cfg.first_k));
        s.push_back(field("k_low", cfg.k_rule.k_low));
        s.push_back(field("k_mid", cfg.k_rule.k_mid));
        s.push_back(field("k_high", cfg.k_rule.k_high));
        s.push_back(field("k_threshold_low", cfg.k_rule.low));
        s.push_back(field("k_threshold_high", cfg.k_rule.high));
        s.push_back(field("cancel_after_zero", cfg.cancel_after_zero));
        s.push_back(field("keep_rollouts", cfg.keep_rollouts));
        apply_options(options, "rpe label", s);
        rpe::PromptRenderer render = renderer(e, system);
        std::vector<rpe::LabelInput> in;
        bool need_render = false;
        for (const auto& [id, problem, steps, answer, prompt] : rows) {
          in.push_back({id, problem, steps, answer, prompt});
          need_render = need_render || prompt.empty();
        }
        check_renderer(render, need_render);
        rpe::Labeler<Engine> lab(e.engine(), render, cfg);
        for (const auto& x : in) {  // invalid rows fail before anything runs
          GENPRM_CHECK_ARG(!x.steps.empty(), "steps: the solution '{}' has no step", x.id);
          GENPRM_CHECK_ARG(!x.answer.empty(), "answer: the ground truth of '{}' is empty", x.id);
        }
        return run_as_json<rpe::LabelResult>(
            [&](const auto& each) { return lab.label_many(std::move(in), each); }, on_result);
      },
      py::arg("engine"), py::arg("rows"), py::arg("options") = py::dict(), py::arg("on_result") = py::none(),
      "Labels (id, problem, steps, answer, prompt) rows over engine's C++ engine; on_result(index, json) "
      "runs as each finishes; returns the JSON texts in input order.");

  m.def(
      "rpe_sample",
      [](PyEngine& e, const std::vector<SampleRow>& rows, const py::dict& options, py::object on_result) {
        rpe::SamplerConfig cfg;
        std::optional<std::string> system;
        std::vector<Setter> s = rollout_setters(cfg.rollout, cfg.seed, cfg.max_problems_in_flight, cfg.step_prefix, system);
        s.push_back(field("n", cfg.n));
        apply_options(options, "rpe sample", s);
        rpe::PromptRenderer render = renderer(e, system);
        std::vector<rpe::SampleInput> in;
        bool need_render = false;
        for (const auto& [id, problem, answer, prompt] : rows) {
          in.push_back({id, problem, answer, prompt});
          need_render = need_render || prompt.empty();
        }
        check_renderer(render, need_render);
        rpe::SolutionSampler<Engine> sampler(e.engine(), render, cfg);
        return run_as_json<rpe::SampleResult>(
            [&](const auto& each) { return sampler.sample_many(std::move(in), each); }, on_result);
      },
      py::arg("engine"), py::arg("rows"), py::arg("options") = py::dict(), py::arg("on_result") = py::none(),
      "Samples n step-forced solutions per (id, problem, answer, prompt) row; JSON texts in input order.");
}

}  // namespace genprm::bindings
