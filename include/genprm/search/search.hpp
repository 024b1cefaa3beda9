#pragma once
// genprm::search: scores, selection, beam search and critic refinement (torch-free).
#include "genprm/search/beam_search.hpp"
#include "genprm/search/many.hpp"
#include "genprm/search/refine.hpp"
#include "genprm/search/score.hpp"
#include "genprm/search/scorer.hpp"
#include "genprm/search/select.hpp"
