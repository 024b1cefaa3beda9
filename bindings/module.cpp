// genprm._core: the compiled part of the Python package. Errors become Python exceptions with
// the C++ message: genprm::ValueError -> ValueError, other genprm::Error -> RuntimeError.
#include "common.hpp"
#include "genprm/util/error.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "genprm compiled core (use the genprm package, not this module directly)";
  m.attr("__version__") = GENPRM_VERSION;
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const genprm::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const genprm::ResourceError& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    }
  });
  namespace b = genprm::bindings;
  b::bind_io(m);
  b::bind_tokenizer(m);
  b::bind_model(m);
  b::bind_engine(m);
  b::bind_exec(m);
  b::bind_math(m);
  b::bind_prm(m);
  b::bind_eval(m);
  b::bind_rpe(m);
  b::bind_search(m);
}
