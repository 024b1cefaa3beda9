#pragma once
// The one way across: a C++ struct with a field list (util/fields.hpp) becomes a Python class
// with keyword construction (defaults are the C++ member initialisers; an unknown name or a
// value of the wrong type is a ValueError naming it; validate() runs), a property per field,
// to_dict() / from_dict() and FIELDS; python/genprm/_bound.py adds a repr of the fields that
// differ from their defaults, read access like a mapping (r["steps"], keys(), get(), `in`),
// equality and pickling to every such class. Options and results of every
// layer are bound this way (bind_struct), so no option is spelled twice and no JSON text crosses.
#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "common.hpp"
#include "genprm/util/error.hpp"
#include "genprm/util/fields.hpp"

// Conversions run once per crossing and are dominated by Python object work; optimising them at
// -O1 instead of -O3 takes a fifth off each binding unit's compile time.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("O1")
#endif

namespace genprm::bindings {

template <typename T>
py::object to_python(const T& v, bool as_dict);

/// One field's value as Python, with its flags (kBoolAsInt, kNoneIfEmpty).
template <typename Fl, typename T>
py::object field_to_python(const Fl& f, const T& v, bool as_dict) {
  if constexpr (std::is_same_v<T, bool>) {
    if (f.flags & kBoolAsInt) return py::int_(v ? 1 : 0);
  }
  if constexpr (is_vector<T>::value || std::is_same_v<T, std::string>) {
    if ((f.flags & kNoneIfEmpty) && v.empty()) return py::none();
  }
  return to_python(v, as_dict);
}

/// The field `name` of `s` as its property reads it (without converting the other fields).
template <typename S>
py::object field_value(const S& s, const char* name) {
  py::object out;
  for_each_field<S>([&](const auto& f) {
    if (!out && std::strcmp(f.name, name) == 0) out = field_to_python(f, s.*(f.member), false);
  });
  GENPRM_CHECK(static_cast<bool>(out), "no field '{}'", name);
  return out;
}

/// Writes the fields of `s` into `d` (as to_dict: nested structs as dicts).
template <typename S>
void write_fields(const S& s, py::dict& d) {
  for_each_field<S>([&](const auto& f) {
    using T = typename std::decay_t<decltype(f)>::type;
    const T& v = s.*(f.member);
    if (!field_written(f, v)) return;
    if constexpr (has_fields_v<T>) {
      if (f.flags & kFlatten) return write_fields(v, d);
    }
    d[f.name] = field_to_python(f, v, true);
  });
}

template <typename S>
py::dict fields_dict(const S& s) {
  py::dict d;
  write_fields(s, d);
  return d;
}

/// A value as Python: structs as their bound class (as_dict: as dicts), named enums as names,
/// optionals as None or the value, vectors as lists.
template <typename T>
py::object to_python(const T& v, bool as_dict) {
  if constexpr (has_fields_v<T>) {
    return as_dict ? py::object(fields_dict(v)) : py::cast(v);
  } else if constexpr (is_named_enum_v<T>) {
    return py::str(enum_name(v));
  } else if constexpr (is_optional<T>::value) {
    return v ? to_python(*v, as_dict) : py::object(py::none());
  } else if constexpr (is_vector<T>::value) {
    py::list out;
    for (const auto& x : v) out.append(to_python(x, as_dict));
    return std::move(out);
  } else if constexpr (std::is_same_v<T, float>) {
    return py::float_(std::stod(fmt::format("{}", v)));  // 0.7f reads as 0.7 (its shortest form), not 0.699999988
  } else {
    return py::cast(v);
  }
}

inline std::string py_type_name(const py::handle& o) { return Py_TYPE(o.ptr())->tp_name; }

template <typename T>
const char* expected_kind() {
  if constexpr (std::is_same_v<T, bool>) return "a bool";
  else if constexpr (std::is_integral_v<T>) return "an integer";
  else if constexpr (std::is_floating_point_v<T>) return "a number";
  else if constexpr (std::is_same_v<T, std::string>) return "a string";
  else return "a value of another type";
}

template <typename S>
void read_fields(const py::object& m, S& s, const std::string& path, bool strict);

/// Sets `out` from a Python value; ValueError naming `path` when it does not fit. A struct is
/// read from its bound class or from a dict, whose keys update `out` (with `strict`, a key that
/// names no field is an error).
template <typename T>
void from_python(const py::object& o, T& out, const std::string& path, bool strict) {
  if constexpr (has_fields_v<T>) {
    if (py::isinstance<T>(o)) return void(out = o.cast<T>());
    GENPRM_CHECK_ARG(PyMapping_Check(o.ptr()) && !py::isinstance<py::str>(o), "{}: expected a dict, got {}", path,
                     py_type_name(o));
    read_fields(o, out, path, strict);
  } else if constexpr (is_named_enum_v<T>) {
    GENPRM_CHECK_ARG(py::isinstance<py::str>(o), "{}: expected a name (str), got {}", path, py_type_name(o));
    out = parse_enum(o.cast<std::string>(), static_cast<T*>(nullptr));
  } else if constexpr (is_optional<T>::value) {
    if (o.is_none()) return void(out.reset());
    typename T::value_type v{};
    from_python(o, v, path, strict);
    out = std::move(v);
  } else if constexpr (is_vector<T>::value) {
    GENPRM_CHECK_ARG(!py::isinstance<py::str>(o) && !py::isinstance<py::bytes>(o) && py::hasattr(o, "__iter__"),
                     "{}: expected a list, got {}", path, py_type_name(o));
    T got;
    size_t i = 0;
    for (auto x : o) {
      typename T::value_type v{};
      from_python(py::reinterpret_borrow<py::object>(x), v, fmt::format("{}[{}]", path, i++), strict);
      got.push_back(std::move(v));
    }
    out = std::move(got);
  } else {
    constexpr bool takes_bool = std::is_same_v<T, bool> || !std::is_integral_v<T>;
    GENPRM_CHECK_ARG(takes_bool || !py::isinstance<py::bool_>(o), "{}: expected {}, got bool", path,
                     expected_kind<T>());
    try {
      out = o.cast<T>();
    } catch (const py::cast_error&) {
      const size_t dot = path.rfind('.');
      throw ValueError(fmt::format("{}: option '{}' has the wrong type (expected {}, got {})", path.substr(0, dot),
                                   path.substr(dot + 1), expected_kind<T>(), py_type_name(o)));
    }
  }
}

/// The keys a mapping may hold for S (flattened structs contribute their own).
template <typename S>
void collect_names(std::vector<std::string>& out) {
  for_each_field<S>([&](const auto& f) {
    using T = typename std::decay_t<decltype(f)>::type;
    if constexpr (has_fields_v<T>) {
      if (f.flags & kFlatten) return collect_names<T>(out);
    }
    out.emplace_back(f.name);
  });
}

/// Reads the keys of the mapping `m` that name fields of S; None leaves a non-optional field as
/// it is. With `strict`, a key that names no field is a ValueError listing the known ones.
template <typename S>
void read_fields(const py::object& m, S& s, const std::string& path, bool strict) {
  if (strict) {
    std::vector<std::string> names;
    collect_names<S>(names);
    for (auto k : m) {
      const std::string key = py::str(k);
      if (std::find(names.begin(), names.end(), key) == names.end())
        throw ValueError(fmt::format("{}: unknown option '{}' (known: {})", path, key, fmt::join(names, ", ")));
    }
  }
  for_each_field<S>([&](const auto& f) {
    using T = typename std::decay_t<decltype(f)>::type;
    if constexpr (has_fields_v<T>) {
      if (f.flags & kFlatten) return read_fields(m, s.*(f.member), path, false);
    }
    py::str key(f.name);
    if (!m.contains(key)) return;
    py::object v = m[key];
    if (v.is_none() && !is_optional<T>::value) return;
    from_python(v, s.*(f.member), path + "." + f.name, strict);
  });
}

/// `m` into a new S (see read_fields).
template <typename S>
S struct_from_mapping(const py::object& m, const std::string& what, bool strict) {
  GENPRM_CHECK_ARG(PyMapping_Check(m.ptr()), "{}: expected a dict, got {}", what, py_type_name(m));
  S s;
  read_fields(m, s, what, strict);
  return s;
}

/// Binds S as a Python class (see the file comment); returns it for extra methods.
template <typename S>
py::class_<S> bind_struct(py::module_& m, const char* name, const char* doc) {
  py::class_<S> c(m, name, doc);
  const std::string cls = name;
  c.def(py::init([cls](const py::kwargs& kw) {
          S s = struct_from_mapping<S>(kw, cls, true);
          validate_fields(s);
          return s;
        }),
        "Keyword construction; unset fields keep their C++ defaults.");
  for_each_field<S>([&](const auto& f) {
    using T = typename std::decay_t<decltype(f)>::type;
    auto mem = f.member;
    const std::string path = cls + "." + f.name;
    // Type-erased accessors: pybind11 instantiates its call machinery once for these two types
    // instead of once per field (which doubled the bindings' compile time).
    const std::function<py::object(py::object)> get = [f](py::object self) -> py::object {
      S& s = self.cast<S&>();
      if constexpr (has_fields_v<T>)  // nested options stay editable in place: o.sampling.top_p = 0.9
        return py::cast(&(s.*(f.member)), py::return_value_policy::reference_internal, self);
      return field_to_python(f, s.*(f.member), false);
    };
    const std::function<void(py::object, py::object)> set = [mem, path](py::object self, py::object v) {
      from_python(v, self.cast<S&>().*mem, path, true);
    };
    c.def_property(f.name, py::cpp_function(get, py::is_method(c)), py::cpp_function(set, py::is_method(c)), f.doc);
  });
  c.attr("FIELDS") = py::tuple(py::cast(field_names<S>()));
  // Type-erased like the accessors; mapping reads, equality, repr and pickling are generic and
  // added to every class with FIELDS once, in Python (python/genprm/_bound.py).
  const std::function<py::object(py::object)> to_dict = [](py::object self) -> py::object {
    return fields_dict(self.cast<const S&>());
  };
  c.def("to_dict", to_dict, "The fields as plain Python values (JSON-ready).");
  const std::function<py::object(py::object)> from_dict = [cls](py::object d) -> py::object {
    return py::cast(struct_from_mapping<S>(d, cls, false));
  };
  c.def_static("from_dict", from_dict, py::arg("d"),
               "The inverse of to_dict (keys it does not know are ignored; missing ones keep their defaults).");
  return c;
}

}  // namespace genprm::bindings

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
