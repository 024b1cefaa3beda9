// genprm::math::BigInt and Exact: arithmetic against values computed with Python's integers,
// the 128-bit fast path and promotion, and the size caps (TooLarge, never a wrong value).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "genprm/math/math.hpp"

using namespace genprm::math;

namespace {
BigInt big(const std::string& s) {
  auto v = BigInt::from_decimal(s);
  REQUIRE_MESSAGE(v.has_value(), s);
  return *v;
}
}  // namespace

TEST_CASE("BigInt: + - * / % gcd against Python") {
  struct Row {
    std::string a, b, sum, difference, product, quotient, remainder, gcd;
  };
  // Quotients truncate toward zero and remainders take the dividend's sign (C++ semantics).
  const std::vector<Row> rows = {
      {"0", "7", "7", "-7", "0", "0", "0", "7"},
      {"1", "-1", "0", "2", "-1", "-1", "0", "1"},
      {"4294967295", "1", "4294967296", "4294967294", "4294967295", "4294967295", "0", "1"},
      {"18446744073709551616", "-18446744073709551615", "1", "36893488147419103231",
       "-340282366920938463444927863358058659840", "-1", "1", "1"},
      {"170141183460469231731687303715884105727", "2", "170141183460469231731687303715884105729",
       "170141183460469231731687303715884105725", "340282366920938463463374607431768211454",
       "85070591730234615865843651857942052863", "1", "1"},
      {"-340282366920938463463374607431768211456", "3", "-340282366920938463463374607431768211453",
       "-340282366920938463463374607431768211459", "-1020847100762815390390123822295304634368",
       "-113427455640312821154458202477256070485", "-1", "1"},
      {"515377520732011331036461129765621272702107522001", "170141183460469231731687303715884105729",
       "515377520902152514496930361497308576417991627730", "515377520561870147575991898033933968986223416272",
       "87686941306266924855199115977667537565642545949901819636079434596371936104290077643729", "3029116820",
       "137198176105529391099388226867735260221", "3"},
      {"10000000000000000000000000000000000000001", "99999999999999999999", "10000000000000000000100000000000000000000",
       "9999999999999999999900000000000000000002", "999999999999999999990000000000000000000099999999999999999999",
       "100000000000000000001", "2", "1"},
      {"-1606938044258990275541962092341162602522202993782792835301376", "18446744073709551629",
       "-1606938044258990275541962092341162602522184547038719125749747",
       "-1606938044258990275541962092341162602522221440526866544853005",
       "-29642774844752946049324366737590977992482623274839098226889780425202068046741504",
       "-87112285931760246585233135225227274397951", "-18446744073708989197", "1"},
      {"815915283247897734345611269596115894272000000000", "265252859812191058636308480000000",
       "815915283247897999598471081787174530580480000000", "815915283247897469092751457405057257963520000000",
       "216423862245978777433449434189193741497882026134966538364057026560000000000000000", "3075990524006400", "0",
       "265252859812191058636308480000000"},
  };
  for (const Row& r : rows) {
    CAPTURE(r.a);
    CAPTURE(r.b);
    BigInt a = big(r.a), b = big(r.b);
    CHECK(a.to_decimal() == r.a);
    CHECK((a + b).to_decimal() == r.sum);
    CHECK((a - b).to_decimal() == r.difference);
    CHECK((a * b).to_decimal() == r.product);
    CHECK((a / b).to_decimal() == r.quotient);
    CHECK((a % b).to_decimal() == r.remainder);
    CHECK(BigInt::gcd(a, b).to_decimal() == r.gcd);
  }
  CHECK_FALSE(BigInt::from_decimal("12a").has_value());
  CHECK_FALSE(BigInt::from_decimal("").has_value());
  CHECK(big("-0").to_decimal() == "0");
}

TEST_CASE("BigInt: pow with a size cap, isqrt, sizes") {
  CHECK(BigInt::pow(BigInt(3), 100, 1000)->to_decimal() == "515377520732011331036461129765621272702107522001");
  CHECK(BigInt::pow(BigInt(2), 127, 128)->bit_length() == 128);
  CHECK_FALSE(BigInt::pow(BigInt(2), 128, 128).has_value());  // 129 bits
  CHECK(BigInt::pow(BigInt(-1), std::uint64_t{1} << 40, 8)->to_decimal() == "1");
  CHECK(BigInt::isqrt(big("10000000000000000000000000000000000000000")).to_decimal() == "100000000000000000000");
  CHECK(BigInt::isqrt(big("9999999999999999999999999999999999999999")).to_decimal() == "99999999999999999999");
  CHECK(big("340282366920938463463374607431768211456").bit_length() == 129);
  CHECK_FALSE(big("170141183460469231731687303715884105728").to_i128().has_value());  // 2^127
  CHECK(big("-170141183460469231731687303715884105727").to_i128().has_value());
  CHECK(big("1" + std::string(400, '0')).log2_abs() == doctest::Approx(400 * 3.321928094887362));
}

TEST_CASE("Exact: 128-bit fast path, promotion beyond, one representation per value") {
  Exact two = Exact::integer(2);
  Exact p127 = two.pow(Exact::integer(127));
  CHECK(p127.small() == nullptr);  // 2^127 does not fit a negatable i128
  CHECK(p127.to_string() == "170141183460469231731687303715884105728");
  CHECK((p127 - Exact::integer(1)).small() != nullptr);  // demoted when it fits again
  CHECK(p127 / two * two == p127);
  CHECK(p127 + Exact::integer(1) != p127);
  Exact tiny = Exact::integer(1) / Exact::integer(10).pow(Exact::integer(40));
  CHECK(tiny.to_string() == "1/10000000000000000000000000000000000000000");
  CHECK(tiny != Exact::integer(1) / (Exact::integer(10).pow(Exact::integer(40)) + Exact::integer(1)));
  CHECK(Exact::from_decimal("0.0000000000000000000000000000000000000001") == tiny);
  CHECK(Exact::integer(100).factorial().to_string().size() == 158);
  CHECK(Exact::binomial(Exact::integer(200), Exact::integer(100)).to_string() ==
        "90548514656103281165404177077484163874504589675413336841320");
  CHECK(Exact::binomial(Exact(*Rational::make(1, 2)), Exact::integer(2)) == Exact(*Rational::make(-1, 8)));
  CHECK(Exact::integer(10).pow(Exact::integer(40)).sqrt() == Exact::integer(10).pow(Exact::integer(20)));
  CHECK(Exact::integer(2).pow(Exact::integer(41)).sqrt().kind() == Exact::Kind::NotRational);
  CHECK(tiny.to_double() == doctest::Approx(1e-40));
}

TEST_CASE("Exact: caps give TooLarge, undefined values NotRational; TooLarge wins") {
  CHECK(Exact::integer(2).pow(Exact::integer(32767)).has_value());  // 32768 bits: the cap
  CHECK(Exact::integer(2).pow(Exact::integer(32768)).is_too_large());
  CHECK(Exact::integer(kMaxExactFactorial).factorial().has_value());
  CHECK(Exact::integer(kMaxExactFactorial + 1).factorial().is_too_large());
  CHECK(Exact::integer(10).pow(Exact::integer(10).pow(Exact::integer(10))).is_too_large());
  CHECK(Exact::integer(1).pow(Exact::integer(10).pow(Exact::integer(100))) == Exact::integer(1));
  CHECK(Exact::integer(-1).pow(Exact::integer(10).pow(Exact::integer(100)) + Exact::integer(1)) == Exact::integer(-1));
  CHECK(Exact::integer(0).pow(Exact::integer(-1)).kind() == Exact::Kind::NotRational);
  CHECK((Exact::integer(1) / Exact::integer(0)).kind() == Exact::Kind::NotRational);
  CHECK((Exact::not_rational() * Exact::too_large()).is_too_large());
  CHECK((Exact::too_large() - Exact::too_large()).is_too_large());
  CHECK(Exact::too_large() != Exact::too_large());  // a non-value equals nothing
}

TEST_CASE("eval_exact: the work budget bounds one evaluation") {
  Expr e;
  VarTable vars;
  REQUIRE(parse_expression("2999!+2998!+2997!", e, vars));
  std::vector<Exact> values;
  std::size_t budget = kExactWorkBudget;
  CHECK(eval_exact(e, 0, values, &budget).has_value());
  CHECK(budget < kExactWorkBudget);
  std::size_t little = 1000;
  CHECK(eval_exact(e, 0, values, &little).is_too_large());
}
