// genprm._core.math: answer extraction, equivalence grading and step splitting (genprm/math/).
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "genprm/math/math.hpp"
#include "genprm/util/error.hpp"

namespace genprm::bindings {

void bind_math(py::module_& m) {
  namespace gm = genprm::math;
  py::module_ sub = m.def_submodule("math", "Final-answer extraction and answer equivalence grading");
  sub.def(
      "extract",
      [](std::string_view text) -> std::optional<std::pair<std::string, std::string>> {
        auto e = gm::extract_answer(text);
        if (!e) return std::nullopt;
        return std::make_pair(std::move(e->answer), std::move(e->rule));
      },
      py::arg("text"), py::call_guard<py::gil_scoped_release>(),
      "(answer, rule) of the final answer in a solution, or None. rule: boxed, fbox, final answer, "
      "the answer is, ####, last number");
  sub.def(
      "compare",
      [](std::string_view prediction, std::string_view reference) {
        return std::string(gm::to_string(gm::compare(prediction, reference)));
      },
      py::arg("prediction"), py::arg("reference"), py::call_guard<py::gil_scoped_release>(),
      "'equal', 'not_equal' or 'unknown'");
  sub.def("is_equiv", &gm::is_equiv, py::arg("prediction"), py::arg("reference"),
          py::call_guard<py::gil_scoped_release>(), "compare(...) == 'equal'");
  sub.def("normalize", &gm::normalize_answer, py::arg("answer"), py::call_guard<py::gil_scoped_release>(),
          "The LaTeX-normalised answer string");
  sub.def(
      "is_equiv_many",
      [](const std::vector<std::string>& predictions, const std::vector<std::string>& references) {
        GENPRM_CHECK_ARG(predictions.size() == references.size(),
                         "is_equiv_many: predictions ({}) and references ({}) must have the same length",
                         predictions.size(), references.size());
        std::vector<bool> out(predictions.size());
        {
          py::gil_scoped_release release;
          for (std::size_t i = 0; i < predictions.size(); ++i) out[i] = gm::is_equiv(predictions[i], references[i]);
        }
        return out;
      },
      py::arg("predictions"), py::arg("references"),
      "is_equiv over pairs, one thread, without the GIL");
  sub.def(
      "split_steps",
      [](std::string_view text, std::string_view rule, const std::optional<std::vector<std::string>>& delimiters) {
        return gm::split_steps(text, gm::parse_step_rule(rule), delimiters);
      },
      py::arg("text"), py::arg("rule"), py::arg("delimiters") = py::none(),
      "The steps of a solution by the rule 'step_headers' (RPE: on '\\nStep ', byte-preserving), "
      "'paragraphs' (refinement: at '\\n\\n' or the one given separator, blank pieces dropped) or "
      "'delimiters' (beam search: at each delimiter, default '\\n\\n' and '\\nStep ', trimmed, blanks "
      "dropped); math/steps.hpp");
  sub.def("join_steps", &gm::join_step_headers, py::arg("steps"), py::arg("count") = -1,
          "The first count steps of split_steps(text, 'step_headers') joined by '\\n' (all when count < 0)");
}

}  // namespace genprm::bindings
