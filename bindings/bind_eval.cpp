// genprm._core evaluation metrics (torch-free).
#include "common.hpp"
#include "genprm/eval/processbench.hpp"

namespace genprm::bindings {

namespace {
py::object optional_float(const std::optional<double>& v) {
  return v ? py::object(py::float_(*v)) : py::object(py::none());
}
}  // namespace

void bind_eval(py::module_& m) {
  m.def(
      "processbench_score",
      [](const std::vector<std::string>& subsets, const std::vector<int>& labels,
         const std::vector<std::vector<double>>& rewards, double threshold) {
        GENPRM_CHECK_ARG(subsets.size() == labels.size() && labels.size() == rewards.size(),
                         "processbench_score: subsets ({}), labels ({}) and rewards ({}) differ in length",
                         subsets.size(), labels.size(), rewards.size());
        std::vector<eval::ProcessBenchRow> rows(labels.size());
        for (size_t i = 0; i < rows.size(); ++i) rows[i] = {subsets[i], labels[i], rewards[i]};
        const auto report = eval::score_processbench(rows, threshold);
        py::dict out, per;
        for (const auto& s : report.subsets) {
          py::dict d;
          d["error_rows"] = s.error_rows;
          d["correct_rows"] = s.correct_rows;
          d["error_hits"] = s.error_hits;
          d["correct_hits"] = s.correct_hits;
          d["acc_error"] = optional_float(s.acc_error);
          d["acc_correct"] = optional_float(s.acc_correct);
          d["f1"] = optional_float(s.f1);
          per[py::str(s.subset)] = d;
        }
        out["subsets"] = per;
        out["average_f1"] = optional_float(report.average_f1);
        out["threshold"] = report.threshold;
        return out;
      },
      py::arg("subsets"), py::arg("labels"), py::arg("rewards"), py::arg("threshold") = 0.5);
}

}  // namespace genprm::bindings
