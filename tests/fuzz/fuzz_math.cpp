// libFuzzer target for genprm::math: extraction, normalisation and grading on arbitrary bytes.
// The input is split at the first NUL (or in half) into a prediction and a reference; every
// entry point must return without crashing, hanging or tripping the sanitizers, and a few
// invariants must hold (an answer always equals itself; extraction returns a substring-sized answer).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "genprm/math/math.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace genprm::math;
  std::string_view all(reinterpret_cast<const char*>(data), size);
  std::size_t cut = all.find('\0');
  if (cut == std::string_view::npos) cut = size / 2;
  std::string_view a = all.substr(0, cut);
  std::string_view b = cut < size ? all.substr(cut + 1) : std::string_view();

  if (auto e = extract_answer(all)) {
    if (e->answer.size() > all.size() || e->rule.empty()) std::abort();
  }
  std::string na = normalize_answer(a);
  (void)normalize_answer(b);
  Verdict v = compare(a, b);
  (void)compare(b, a);
  if (compare(a, a) != Verdict::Equal) std::abort();  // reflexive: identical strings are equal
  if (is_equiv(a, b) != (v == Verdict::Equal)) std::abort();
  (void)na;
  return 0;
}
