#pragma once
// genprm::math: final-answer extraction and answer equivalence grading (torch-free).
#include "genprm/math/extract.hpp"
#include "genprm/math/grade.hpp"
#include "genprm/math/normalize.hpp"
