#pragma once
// The option table of the bindings: a Python dict of keyword options read into C++ fields by
// name (bind_prm.cpp: GenPRM verifier / engine / sandbox options; bind_rpe.cpp: labeller and
// sampler options).
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "genprm/util/error.hpp"

namespace genprm::bindings {

/// An option name and what sets it from a Python value.
using Setter = std::pair<const char*, std::function<void(const py::object&)>>;

/// The option `name` cast into `ref`.
template <typename T>
Setter field(const char* name, T& ref) {
  return {name, [&ref](const py::object& o) { ref = o.cast<T>(); }};
}

/// Reads the keys of `d` into the fields `setters` knows; None leaves a field as it is. An unknown
/// key, or a value of the wrong type, is a ValueError naming it.
inline void apply_options(const py::dict& d, const char* what, const std::vector<Setter>& setters) {
  for (auto item : d) {
    const std::string key = py::str(item.first);
    const Setter* found = nullptr;
    for (const auto& s : setters)
      if (key == s.first) found = &s;
    if (found == nullptr) {
      std::vector<std::string> names;
      for (const auto& s : setters) names.emplace_back(s.first);
      throw ValueError(fmt::format("{}: unknown option '{}' (known: {})", what, key, fmt::join(names, ", ")));
    }
    if (item.second.is_none()) continue;
    try {
      found->second(py::reinterpret_borrow<py::object>(item.second));
    } catch (const py::cast_error&) {
      throw ValueError(fmt::format("{}: option '{}' has the wrong type ({})", what, key,
                                   std::string(py::str(py::type::of(item.second).attr("__name__")))));
    }
  }
}

}  // namespace genprm::bindings
