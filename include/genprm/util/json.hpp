#pragma once
// JSON access with errors that name the file and the key.
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "genprm/util/error.hpp"

namespace genprm {

using Json = nlohmann::json;

/// Parses a JSON document; `what` (usually a file path) prefixes any error.
inline Json parse_json(const std::string& text, const std::string& what) {
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for 1e999
    throw ValueError(fmt::format("{}: invalid JSON: {}", what, e.what()));
  }
}

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  GENPRM_CHECK_ARG(in.good(), "{}: cannot open file", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Reads and parses a JSON file; errors name the file.
inline Json read_json_file(const std::string& path) { return parse_json(read_text_file(path), path); }

/// Returns j[key] converted to T, or `fallback` when absent or null; a wrong type is an error
/// naming `what` and the key.
template <typename T>
T json_get_or(const Json& j, const std::string& key, const T& fallback, const std::string& what) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(fmt::format("{}: field '{}' has the wrong type ({})", what, key, e.what()));
  }
}

/// Returns j[key] converted to T; a missing key or wrong type is an error naming `what`.
template <typename T>
T json_get(const Json& j, const std::string& key, const std::string& what) {
  auto it = j.find(key);
  GENPRM_CHECK_ARG(it != j.end() && !it->is_null(), "{}: missing required field '{}'", what, key);
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(fmt::format("{}: field '{}' has the wrong type ({})", what, key, e.what()));
  }
}

}  // namespace genprm
