#pragma once
// Strict JSON parsing for model files: every failure is a genprm::ValueError naming the file.
// Stricter than util/json.hpp's parse_json in two ways: duplicate keys in any object are an error
// (nlohmann silently keeps the last one), and number overflow ("1e999", thrown by nlohmann as
// out_of_range rather than parse_error; found by fuzz_model_config) is reported as invalid JSON.
#include <set>
#include <string>
#include <vector>

#include "genprm/util/error.hpp"
#include "genprm/util/json.hpp"

namespace genprm {

/// Parses [begin, end); `what` (the file) and `kind` ("JSON", "JSON header") prefix errors.
inline Json parse_json_strict(const char* begin, const char* end, const std::string& what,
                              const char* kind = "JSON") {
  std::vector<std::set<std::string>> keys;  // one set per open object
  std::string duplicate;
  auto cb = [&](int /*depth*/, Json::parse_event_t ev, Json& parsed) -> bool {
    switch (ev) {
      case Json::parse_event_t::object_start: keys.emplace_back(); break;
      case Json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!keys.empty() && parsed.is_string()) {
          const auto& k = parsed.get_ref<const std::string&>();
          if (!keys.back().insert(k).second && duplicate.empty()) duplicate = k;
        }
        break;
      default: break;
    }
    return true;
  };
  Json j;
  try {
    j = Json::parse(begin, end, cb);
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(fmt::format("{}: invalid {}: {}", what, kind, e.what()));
  }
  GENPRM_CHECK_ARG(duplicate.empty(), "{}: duplicate name '{}' in the {}", what, duplicate, kind);
  return j;
}

inline Json parse_json_strict(const std::string& text, const std::string& what, const char* kind = "JSON") {
  return parse_json_strict(text.data(), text.data() + text.size(), what, kind);
}

/// Reads and strictly parses a JSON file; errors name the file.
inline Json read_json_file_strict(const std::string& path) {
  return parse_json_strict(read_text_file(path), path);
}

}  // namespace genprm
