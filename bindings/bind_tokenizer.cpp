#include "common.hpp"

namespace genprm::bindings {
void bind_tokenizer(py::module_& m) { (void)m; }
}  // namespace genprm::bindings
