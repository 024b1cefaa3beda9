#pragma once
// genprm::math: final-answer extraction, answer equivalence grading and solution step splitting
// (torch-free).
#include "genprm/math/extract.hpp"
#include "genprm/math/grade.hpp"
#include "genprm/math/normalize.hpp"
#include "genprm/math/steps.hpp"
