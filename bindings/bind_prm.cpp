#include "common.hpp"

namespace genprm::bindings {
void bind_prm(py::module_& m) { (void)m; }
}  // namespace genprm::bindings
