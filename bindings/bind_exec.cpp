#include "common.hpp"

namespace genprm::bindings {
void bind_exec(py::module_& m) { (void)m; }
}  // namespace genprm::bindings
