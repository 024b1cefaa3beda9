#pragma once
// RPE label estimation: everything of include/genprm/rpe/ (torch-free; see README.md).
#include "genprm/rpe/config.hpp"
#include "genprm/rpe/grade.hpp"
#include "genprm/rpe/labeler.hpp"
#include "genprm/rpe/labels.hpp"
#include "genprm/rpe/result.hpp"
#include "genprm/rpe/sampler.hpp"
#include "genprm/rpe/steps.hpp"
