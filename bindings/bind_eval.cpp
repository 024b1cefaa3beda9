// genprm._core evaluation metrics (torch-free); reports are bound structs (bound.hpp).
#include "bound.hpp"
#include "common.hpp"
#include "genprm/eval/bon.hpp"
#include "genprm/eval/processbench.hpp"

namespace genprm::bindings {

void bind_eval(py::module_& m) {
  bind_struct<eval::ProcessBenchScore>(m, "ProcessBenchScore", "acc_error / acc_correct / F1 of one subset.");
  bind_struct<eval::ProcessBenchReport>(m, "ProcessBenchReport", "Per-subset scores and the average F1.");
  bind_struct<eval::BonPoint>(m, "BonPoint", "Accuracy and hits per method at one N.");
  bind_struct<eval::BonReport>(m, "BonReport", "Best-of-N accuracy curves.");
  m.def(
      "processbench_score",
      [](const std::vector<std::string>& subsets, const std::vector<int>& labels,
         const std::vector<std::vector<double>>& rewards, double threshold) {
        GENPRM_CHECK_ARG(subsets.size() == labels.size() && labels.size() == rewards.size(),
                         "processbench_score: subsets ({}), labels ({}) and rewards ({}) differ in length",
                         subsets.size(), labels.size(), rewards.size());
        std::vector<eval::ProcessBenchRow> rows(labels.size());
        for (size_t i = 0; i < rows.size(); ++i) rows[i] = {subsets[i], labels[i], rewards[i]};
        return eval::score_processbench(rows, threshold);
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
        py::gil_scoped_release nogil;
        return eval::score_best_of_n(probs, sizes);
      },
      py::arg("ids"), py::arg("ground_truths"), py::arg("answers"), py::arg("rewards"), py::arg("sizes"));
}

}  // namespace genprm::bindings
