#pragma once
// genprm::search: scores, selection, Best-of-N, beam search and critic refinement (torch-free).
#include "genprm/search/batch_scorer.hpp"
#include "genprm/search/beam_search.hpp"
#include "genprm/search/best_of_n.hpp"
#include "genprm/search/many.hpp"
#include "genprm/search/refine.hpp"
#include "genprm/search/score.hpp"
#include "genprm/search/scorer.hpp"
#include "genprm/search/select.hpp"
