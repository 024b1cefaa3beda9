#include "common.hpp"

namespace genprm::bindings {
void bind_model(py::module_& m) { (void)m; }
}  // namespace genprm::bindings
