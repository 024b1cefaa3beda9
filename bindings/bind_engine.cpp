#include "common.hpp"

namespace genprm::bindings {
void bind_engine(py::module_& m) { (void)m; }
}  // namespace genprm::bindings
