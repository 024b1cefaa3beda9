#include "common.hpp"

namespace genprm::bindings {
void bind_io(py::module_& m) { (void)m; }
}  // namespace genprm::bindings
