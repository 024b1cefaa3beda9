#pragma once
// Shared by every bindings/*.cpp. Each file defines one `void bind_<layer>(pybind11::module_&)`.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/numpy.h>

namespace py = pybind11;

namespace genprm::bindings {
void bind_io(py::module_& m);
void bind_tokenizer(py::module_& m);
void bind_model(py::module_& m);
void bind_engine(py::module_& m);
void bind_exec(py::module_& m);
void bind_math(py::module_& m);
void bind_prm(py::module_& m);
void bind_eval(py::module_& m);
void bind_rpe(py::module_& m);
void bind_search(py::module_& m);
}  // namespace genprm::bindings
