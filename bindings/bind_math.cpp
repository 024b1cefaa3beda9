#include "common.hpp"

namespace genprm::bindings {
void bind_math(py::module_& m) { (void)m; }
}  // namespace genprm::bindings
