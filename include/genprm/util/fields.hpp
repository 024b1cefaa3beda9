#pragma once
// Field lists: a struct that crosses a boundary (Python, JSON) names its fields once, in
// `static auto fields()`, and every conversion is derived from that list: JSON here, the Python
// classes in bindings/bound.hpp. Defaults stay the member initialisers, so each is written once.
//
//   struct Point { int x = 0; std::vector<double> w;
//     static auto fields() { return std::make_tuple(field("x", &Point::x), field("w", &Point::w)); } };
//
// Enums cross as their names: an enum is named when `enum_name(E)` and `parse_enum(text, E*)`
// are found by argument-dependent lookup.
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "genprm/util/error.hpp"
#include "genprm/util/json.hpp"

namespace genprm {

/// How a field is written (to JSON and to Python dicts).
enum FieldFlags : unsigned {
  kPlain = 0,
  kOmitEmpty = 1,  ///< an empty vector is left out (an option that is off by default)
  kFlatten = 2,    ///< a nested struct's fields are written into the parent
  kBoolAsInt = 4,  ///< a bool is written as 0 / 1 (labels, as the reference writes them)
  kNoneIfEmpty = 8,  ///< an empty string or vector is written as null / None ("no stop reason")
};

template <typename S, typename T>
struct Field {
  const char* name;
  T S::*member;
  const char* doc;
  unsigned flags;
  using type = T;
};

template <typename S, typename T>
constexpr Field<S, T> field(const char* name, T S::*member, const char* doc = "", unsigned flags = kPlain) {
  return {name, member, doc, flags};
}

template <typename T, typename = void>
struct has_fields : std::false_type {};
template <typename T>
struct has_fields<T, std::void_t<decltype(T::fields())>> : std::true_type {};
template <typename T>
inline constexpr bool has_fields_v = has_fields<T>::value;

template <typename E, typename = void>
struct is_named_enum : std::false_type {};
template <typename E>
struct is_named_enum<E, std::void_t<decltype(enum_name(std::declval<E>())),
                                    decltype(parse_enum(std::string(), static_cast<E*>(nullptr)))>>
    : std::true_type {};
template <typename E>
inline constexpr bool is_named_enum_v = is_named_enum<E>::value;

template <typename T>
struct is_vector : std::false_type {};
template <typename T, typename A>
struct is_vector<std::vector<T, A>> : std::true_type {};
template <typename T>
struct is_optional : std::false_type {};
template <typename T>
struct is_optional<std::optional<T>> : std::true_type {};

template <typename T, typename = void>
struct has_validate : std::false_type {};
template <typename T>
struct has_validate<T, std::void_t<decltype(std::declval<const T&>().validate())>> : std::true_type {};

/// Calls f(field) for every field of S, in declaration order.
template <typename S, typename F>
void for_each_field(F&& f) {
  std::apply([&](const auto&... fl) { (f(fl), ...); }, S::fields());
}

/// The field names of S.
template <typename S>
std::vector<std::string> field_names() {
  std::vector<std::string> out;
  for_each_field<S>([&](const auto& f) { out.emplace_back(f.name); });
  return out;
}

/// t.validate() when T has one.
template <typename T>
void validate_fields(const T& t) {
  if constexpr (has_validate<T>::value) t.validate();
}

/// Whether the field's value is written at all (kOmitEmpty).
template <typename Fl, typename T>
bool field_written(const Fl& f, const T& v) {
  if constexpr (is_vector<T>::value) return !(f.flags & kOmitEmpty) || !v.empty();
  return true;
}

// ---- JSON ----------------------------------------------------------------------------------

/// A value as JSON: structs as objects of their fields, named enums as names, non-finite
/// floats as null.
template <typename T>
Json to_json_value(const T& v);

template <typename S>
void write_fields(const S& s, Json& out) {
  for_each_field<S>([&](const auto& f) {
    using T = typename std::decay_t<decltype(f)>::type;
    const T& v = s.*(f.member);
    if (!field_written(f, v)) return;
    if constexpr (has_fields_v<T>) {
      if (f.flags & kFlatten) return write_fields(v, out);
    }
    if constexpr (std::is_same_v<T, bool>) {
      if (f.flags & kBoolAsInt) return void(out[f.name] = v ? 1 : 0);
    }
    if constexpr (is_vector<T>::value || std::is_same_v<T, std::string>) {
      if ((f.flags & kNoneIfEmpty) && v.empty()) return void(out[f.name] = nullptr);
    }
    out[f.name] = to_json_value(v);
  });
}

template <typename T>
Json to_json_value(const T& v) {
  if constexpr (has_fields_v<T>) {
    Json out = Json::object();
    write_fields(v, out);
    return out;
  } else if constexpr (is_named_enum_v<T>) {
    return Json(enum_name(v));
  } else if constexpr (is_optional<T>::value) {
    return v ? to_json_value(*v) : Json(nullptr);
  } else if constexpr (is_vector<T>::value) {
    Json out = Json::array();
    for (const auto& x : v) out.push_back(to_json_value(x));
    return out;
  } else if constexpr (std::is_floating_point_v<T>) {
    return std::isfinite(v) ? Json(v) : Json(nullptr);
  } else {
    return Json(v);
  }
}

/// Reads what to_json_value wrote into `out`; keys that are absent (or null) keep `out`'s value.
/// A value of the wrong type is a ValueError naming `path` (e.g. "result.steps[2].reward").
template <typename T>
void from_json_value(const Json& j, T& out, const std::string& path);

template <typename S>
void read_fields(const Json& j, S& s, const std::string& path) {
  for_each_field<S>([&](const auto& f) {
    using T = typename std::decay_t<decltype(f)>::type;
    if constexpr (has_fields_v<T>) {
      if (f.flags & kFlatten) return read_fields(j, s.*(f.member), path);
    }
    if (j.contains(f.name) && !j.at(f.name).is_null())
      from_json_value(j.at(f.name), s.*(f.member), path + "." + f.name);
  });
}

template <typename T>
void from_json_value(const Json& j, T& out, const std::string& path) {
  if constexpr (has_fields_v<T>) {
    GENPRM_CHECK_ARG(j.is_object(), "{}: expected a JSON object, got {}", path, j.type_name());
    read_fields(j, out, path);
  } else if constexpr (is_named_enum_v<T>) {
    GENPRM_CHECK_ARG(j.is_string(), "{}: expected a name, got {}", path, j.type_name());
    out = parse_enum(j.get<std::string>(), static_cast<T*>(nullptr));
  } else if constexpr (is_optional<T>::value) {
    if (j.is_null()) return void(out.reset());
    typename T::value_type v{};
    from_json_value(j, v, path);
    out = std::move(v);
  } else if constexpr (is_vector<T>::value) {
    GENPRM_CHECK_ARG(j.is_array(), "{}: expected a JSON array, got {}", path, j.type_name());
    out.clear();
    for (size_t i = 0; i < j.size(); ++i) {
      typename T::value_type v{};
      from_json_value(j[i], v, fmt::format("{}[{}]", path, i));
      out.push_back(std::move(v));
    }
  } else if constexpr (std::is_same_v<T, bool>) {
    GENPRM_CHECK_ARG(j.is_boolean() || j.is_number_integer(), "{}: expected a boolean, got {}", path, j.type_name());
    out = j.is_boolean() ? j.get<bool>() : j.get<int64_t>() != 0;
  } else if constexpr (std::is_arithmetic_v<T>) {
    GENPRM_CHECK_ARG(j.is_number() && (std::is_floating_point_v<T> || !j.is_number_float()),
                     "{}: expected {}, got {}", path, std::is_floating_point_v<T> ? "a number" : "an integer",
                     j.type_name());
    out = j.get<T>();
  } else {
    try {
      out = j.get<T>();
    } catch (const std::exception& e) {
      throw ValueError(fmt::format("{}: wrong type ({})", path, e.what()));
    }
  }
}

/// A struct with a field list as a JSON object.
template <typename T, typename = std::enable_if_t<has_fields_v<T>>>
Json to_json(const T& v) {
  return to_json_value(v);
}

/// A struct with a field list from its JSON object (fields absent from `j` keep their defaults).
template <typename S>
S struct_from_json(const Json& j, const std::string& what) {
  S s;
  from_json_value(j, s, what);
  return s;
}

}  // namespace genprm
