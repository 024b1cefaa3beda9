// genprm._core rpe bindings (being written).
#include "common.hpp"

namespace genprm::bindings {
void bind_rpe(py::module_& m) { (void)m; }
}  // namespace genprm::bindings
