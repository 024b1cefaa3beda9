#pragma once
// ProcessBench scoring (Zheng et al. 2024), as docs/design.md "ProcessBench metric" defines it.
// Torch-free. May include: util. Never includes engine, prm or anything below.
//
// Prediction of a row = index of the first step whose reward is below the threshold (-1 if none).
// acc_error   = share of rows with label != -1 whose prediction equals the label exactly;
// acc_correct = share of rows with label == -1 that are predicted -1;
// F1          = 2 * acc_error * acc_correct / (acc_error + acc_correct)   (a harmonic mean of two
//               accuracies, not a step-classification F1). All three are reported in percent,
//               per subset, and F1 is averaged over the subsets where it is defined.
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "genprm/util/error.hpp"
#include "genprm/util/fields.hpp"

namespace genprm::eval {

struct ProcessBenchRow {
  std::string subset;           ///< gsm8k, math, olympiadbench, omnimath, ... (any name)
  int label = -1;               ///< index of the first wrong step, -1 when all steps are correct
  std::vector<double> rewards;  ///< one per step
};

struct ProcessBenchScore {
  std::string subset;
  size_t error_rows = 0, correct_rows = 0;  ///< rows with label != -1 / label == -1
  size_t error_hits = 0, correct_hits = 0;  ///< of those, predicted exactly
  std::optional<double> acc_error;          ///< percent; nullopt when the subset has no such rows
  std::optional<double> acc_correct;        ///< percent; nullopt when the subset has no such rows
  std::optional<double> f1;                 ///< percent; nullopt when either accuracy is undefined

  static auto fields() {
    using S = ProcessBenchScore;
    return std::make_tuple(field("subset", &S::subset), field("error_rows", &S::error_rows),
                           field("correct_rows", &S::correct_rows), field("error_hits", &S::error_hits),
                           field("correct_hits", &S::correct_hits), field("acc_error", &S::acc_error),
                           field("acc_correct", &S::acc_correct), field("f1", &S::f1));
  }
};

struct ProcessBenchReport {
  std::vector<ProcessBenchScore> subsets;  ///< sorted by subset name
  std::optional<double> average_f1;        ///< mean F1 over subsets where it is defined
  double threshold = 0.5;

  static auto fields() {
    using R = ProcessBenchReport;
    return std::make_tuple(field("subsets", &R::subsets), field("average_f1", &R::average_f1),
                           field("threshold", &R::threshold));
  }
};

/// Index of the first reward below `threshold`, or -1 when there is none.
inline int first_step_below(const std::vector<double>& rewards, double threshold) {
  for (size_t i = 0; i < rewards.size(); ++i)
    if (rewards[i] < threshold) return static_cast<int>(i);
  return -1;
}

/// Scores rows per subset. Throws ValueError naming the row for a label outside [-1, steps).
inline ProcessBenchReport score_processbench(const std::vector<ProcessBenchRow>& rows,
                                             double threshold = 0.5) {
  std::map<std::string, ProcessBenchScore> by_subset;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    GENPRM_CHECK_ARG(r.label >= -1 && r.label < static_cast<int>(r.rewards.size()),
                     "processbench row {} (subset '{}'): label {} outside [-1, {}) steps", i,
                     r.subset, r.label, r.rewards.size());
    auto& s = by_subset[r.subset];
    s.subset = r.subset;
    const int predicted = first_step_below(r.rewards, threshold);
    if (r.label == -1) {
      ++s.correct_rows;
      s.correct_hits += predicted == -1;
    } else {
      ++s.error_rows;
      s.error_hits += predicted == r.label;
    }
  }
  ProcessBenchReport report;
  report.threshold = threshold;
  double f1_sum = 0.0;
  size_t f1_count = 0;
  for (auto& [name, s] : by_subset) {
    if (s.error_rows > 0) s.acc_error = 100.0 * s.error_hits / s.error_rows;
    if (s.correct_rows > 0) s.acc_correct = 100.0 * s.correct_hits / s.correct_rows;
    if (s.acc_error && s.acc_correct) {
      const double a = *s.acc_error, c = *s.acc_correct;
      s.f1 = a + c > 0 ? 2.0 * a * c / (a + c) : 0.0;
      f1_sum += *s.f1;
      ++f1_count;
    }
    report.subsets.push_back(s);
  }
  if (f1_count > 0) report.average_f1 = f1_sum / f1_count;
  return report;
}

}  // namespace genprm::eval
