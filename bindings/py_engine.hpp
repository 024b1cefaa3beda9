#pragma once
// PyEngine: what genprm._core.Engine wraps (engine/engine.hpp's ServedModel: a Qwen2 model, its
// tokenizer when the model folder has one, and the engine). Shared so that other bindings (rpe,
// search) can take a Python Engine and drive its C++ engine directly.
#include "genprm/engine/engine.hpp"

namespace genprm::bindings {

using PyEngine = ServedModel;

}  // namespace genprm::bindings
