#include <doctest/doctest.h>

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "genprm/util/fields.hpp"

namespace demo {

enum class Color { red, green };
inline const char* enum_name(Color c) { return c == Color::red ? "red" : "green"; }
inline Color parse_enum(const std::string& s, Color*) {
  if (s == "red") return Color::red;
  if (s == "green") return Color::green;
  throw genprm::ValueError("color '" + s + "' is not red or green");
}

struct Inner {
  double mc = 0.0;
  bool label = false;
  static auto fields() {
    using genprm::field;
    return std::make_tuple(field("mc", &Inner::mc), field("label", &Inner::label, "", genprm::kBoolAsInt));
  }
};

struct Outer {
  int count = 3;
  std::string name = "x";
  Color color = Color::green;
  std::optional<unsigned long long> seed;
  Inner inner;
  std::vector<Inner> items;
  std::vector<std::string> extra;
  static auto fields() {
    using genprm::field;
    return std::make_tuple(field("count", &Outer::count), field("name", &Outer::name),
                           field("color", &Outer::color), field("seed", &Outer::seed),
                           field("inner", &Outer::inner, "", genprm::kFlatten), field("items", &Outer::items),
                           field("extra", &Outer::extra, "", genprm::kOmitEmpty));
  }
};

}  // namespace demo

using genprm::Json;

TEST_CASE("fields: JSON of a struct follows its field list and flags") {
  demo::Outer o;
  o.inner.label = true;
  o.inner.mc = 0.25;
  o.items.push_back({std::numeric_limits<double>::infinity(), false});
  const Json j = genprm::to_json(o);
  CHECK(j.at("count") == 3);
  CHECK(j.at("color") == "green");
  CHECK(j.at("seed").is_null());
  CHECK(j.at("mc") == 0.25);        // flattened into the parent
  CHECK(j.at("label") == 1);        // bool as 0 / 1
  CHECK_FALSE(j.contains("inner"));
  CHECK_FALSE(j.contains("extra"));  // empty and kOmitEmpty
  CHECK(j.at("items")[0].at("mc").is_null());  // infinity has no JSON form
  CHECK(genprm::field_names<demo::Outer>() ==
        std::vector<std::string>{"count", "name", "color", "seed", "inner", "items", "extra"});
}

TEST_CASE("fields: reading JSON back; absent keys keep defaults; errors name the path") {
  demo::Outer o;
  o.count = 7;
  o.seed = 42;
  o.color = demo::Color::red;
  o.extra = {"a"};
  o.inner.mc = 0.5;
  o.items = {{0.1, true}, {0.2, false}};
  const auto back = genprm::struct_from_json<demo::Outer>(genprm::to_json(o), "outer");
  CHECK(genprm::to_json(back) == genprm::to_json(o));
  CHECK(back.seed == 42ull);

  const auto partial = genprm::struct_from_json<demo::Outer>(Json{{"name", "y"}}, "outer");
  CHECK(partial.count == 3);
  CHECK(partial.name == "y");

  CHECK_THROWS_WITH_AS(genprm::struct_from_json<demo::Outer>(Json{{"count", "many"}}, "outer"),
                       doctest::Contains("outer.count: expected an integer"), genprm::ValueError);
  CHECK_THROWS_WITH_AS(genprm::struct_from_json<demo::Outer>(Json{{"count", 2.5}}, "outer"),
                       doctest::Contains("outer.count"), genprm::ValueError);
  CHECK_THROWS_WITH_AS(genprm::struct_from_json<demo::Outer>(Json{{"items", Json::array({Json{{"mc", "x"}}})}}, "o"),
                       doctest::Contains("o.items[0].mc"), genprm::ValueError);
  CHECK_THROWS_WITH_AS(genprm::struct_from_json<demo::Outer>(Json{{"color", "blue"}}, "o"),
                       doctest::Contains("blue"), genprm::ValueError);
}
