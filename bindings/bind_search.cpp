// genprm._core search bindings (being written).
#include "common.hpp"

namespace genprm::bindings {
void bind_search(py::module_& m) { (void)m; }
}  // namespace genprm::bindings
