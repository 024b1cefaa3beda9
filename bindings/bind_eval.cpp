// genprm._core evaluation metrics (torch-free).
#include "common.hpp"
#include "genprm/eval/bon.hpp"
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
      py::arg("subsets"), py::arg("labels"), py::arg("rewards"), py::arg("threshold"));

  m.def(
      "best_of_n_score",
      [](const std::vector<std::string>& ids, const std::vector<std::string>& ground_truths,
         const std::vector<std::vector<std::optional<std::string>>>& answers,
         const std::vector<std::vector<std::vector<double>>>& rewards, const std::vector<int>& sizes) {
        GENPRM_CHECK_ARG(ids.size() == ground_truths.size() && ids.size() == answers.size() &&
                             ids.size() == rewards.size(),
                         "best_of_n_score: ids ({}), ground_truths ({}), answers ({}) and rewards ({}) differ in length",
                         ids.size(), ground_truths.size(), answers.size(), rewards.size());
        std::vector<eval::BonProblem> probs(ids.size());
        for (size_t p = 0; p < ids.size(); ++p) {
          GENPRM_CHECK_ARG(answers[p].size() == rewards[p].size(),
                           "best_of_n_score: problem {} ('{}') has {} answers but {} reward lists", p, ids[p],
                           answers[p].size(), rewards[p].size());
          probs[p].id = ids[p];
          probs[p].ground_truth = ground_truths[p];
          for (size_t i = 0; i < answers[p].size(); ++i) probs[p].candidates.push_back({answers[p][i], rewards[p][i]});
        }
        eval::BonReport rep;
        {
          py::gil_scoped_release nogil;
          rep = eval::score_best_of_n(probs, sizes);
        }
        py::dict out;
        out["methods"] = rep.methods;
        out["problems"] = rep.problems;
        py::list points;
        for (const auto& pt : rep.points) {
          py::dict d;
          d["n"] = pt.n;
          d["accuracy"] = pt.accuracy;
          d["hits"] = pt.hits;
          points.append(d);
        }
        out["points"] = points;
        return out;
      },
      py::arg("ids"), py::arg("ground_truths"), py::arg("answers"), py::arg("rewards"), py::arg("sizes"));
}

}  // namespace genprm::bindings
