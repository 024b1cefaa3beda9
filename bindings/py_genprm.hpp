#pragma once
// PyGenPRM: what genprm._core.GenPRMCore wraps (the C++ GenPRM and the lock its calls take).
// Shared so that other bindings (search) can take a Python GenPRM and run its verifier.
#include <memory>
#include <mutex>

#include "genprm/prm/genprm.hpp"
#include "genprm/search/scorer.hpp"

namespace genprm::bindings {

/// The verifier and its engine are single-threaded, and calls release the GIL, so concurrent
/// Python threads take turns on `mu` instead of corrupting them. Hold `mu` around every use of `g`.
struct PyGenPRM {
  std::unique_ptr<prm::GenPRM> g;
  std::mutex mu;
  /// Prefix cache of the VerifierScorer that search bindings build over `g` (one per search
  /// call); Python: GenPRM.search_prefix_cache.
  search::VerifierScorerOptions scorer_options;
};

}  // namespace genprm::bindings
