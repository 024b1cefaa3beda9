#pragma once
// Solution scores from step rewards (docs/design.md "Policy test-time scaling"): PRM-last, PRM-min,
// PRM-avg, PRM-prod. Torch-free; may include util only.
//
// An empty reward list (a solution with no scored step) scores 0.0 under every aggregation: no
// evidence counts as the worst reward, so it never beats a scored solution with rewards in
// [0, 1]. NaN rewards propagate (NaN scores rank below every number in select.hpp).
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "genprm/util/error.hpp"
#include "genprm/util/fields.hpp"

namespace genprm::search {

enum class Aggregation { Last, Min, Avg, Prod };

inline constexpr Aggregation kAggregations[] = {Aggregation::Last, Aggregation::Min, Aggregation::Avg,
                                                Aggregation::Prod};

inline const char* aggregation_name(Aggregation a) {
  switch (a) {
    case Aggregation::Last: return "last";
    case Aggregation::Min: return "min";
    case Aggregation::Avg: return "avg";
    case Aggregation::Prod: return "prod";
  }
  return "?";
}

/// "last", "min", "avg" (also "mean"), "prod" (also "product"), case-sensitive. Throws
/// ValueError naming the known names for anything else.
inline Aggregation parse_aggregation(std::string_view name) {
  if (name == "last") return Aggregation::Last;
  if (name == "min") return Aggregation::Min;
  if (name == "avg" || name == "mean") return Aggregation::Avg;
  if (name == "prod" || name == "product") return Aggregation::Prod;
  throw ValueError(fmt::format("aggregation: unknown name '{}' (known: last, min, avg, prod)", name));
}

inline const char* enum_name(Aggregation a) { return aggregation_name(a); }
inline Aggregation parse_enum(const std::string& s, Aggregation*) { return parse_aggregation(s); }

/// The score of a solution from its step rewards (0.0 for an empty list, see above).
inline double aggregate(const std::vector<double>& rewards, Aggregation how) {
  if (rewards.empty()) return 0.0;
  switch (how) {
    case Aggregation::Last: return rewards.back();
    case Aggregation::Min: {
      double m = rewards.front();
      for (double r : rewards) m = (r < m || r != r) ? r : m;  // NaN wins so it propagates
      return m;
    }
    case Aggregation::Avg: {
      double s = 0.0;
      for (double r : rewards) s += r;
      return s / static_cast<double>(rewards.size());
    }
    case Aggregation::Prod: {
      double p = 1.0;
      for (double r : rewards) p *= r;
      return p;
    }
  }
  return 0.0;
}

}  // namespace genprm::search
