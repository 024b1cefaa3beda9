#pragma once
// Exact rational values of any size up to a cap. A value is the 128-bit Rational (rational.hpp)
// while it fits, which keeps the common case fast, and a BigInt numerator and denominator beyond
// (promoted when a 128-bit operation overflows, demoted when a result fits again, so every value
// has one representation and == is exact). Two non-values propagate through arithmetic:
//   * NotRational: irrational, complex or undefined (sqrt 2, 1/0): the grader uses floating point;
//   * TooLarge: rational, but beyond the caps below: the grader answers Unknown, never Equal.
// TooLarge wins over NotRational, so a huge rational part is never hidden by floating point.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "genprm/math/bigint.hpp"
#include "genprm/math/rational.hpp"

namespace genprm::math {

/// Largest numerator or denominator computed exactly: 32768 bits, about 10^9864.
inline constexpr std::size_t kMaxExactBits = 32768;
/// n! is computed exactly for n <= 3000 (3000! has 9131 digits, 30,290 bits); beyond: TooLarge.
inline constexpr std::int64_t kMaxExactFactorial = 3000;

class Exact {
 public:
  enum class Kind : std::uint8_t { Value, NotRational, TooLarge };

  Exact() = default;  // NotRational
  Exact(const Rational& q) : kind_(Kind::Value), small_(q) {}  // NOLINT(google-explicit-constructor)
  static Exact integer(i128 n) { return Exact(Rational::integer(n)); }
  static Exact not_rational() { return Exact(); }
  static Exact too_large() {
    Exact e;
    e.kind_ = Kind::TooLarge;
    return e;
  }
  /// num / den in lowest terms; NotRational when den == 0, TooLarge beyond kMaxExactBits.
  static Exact fraction(const BigInt& num, const BigInt& den) {
    if (den.is_zero()) return not_rational();
    BigInt g = BigInt::gcd(num, den);
    BigInt n = num / g, d = den / g;
    if (d.is_negative()) {
      n = -n;
      d = -d;
    }
    return reduced(std::move(n), std::move(d));
  }
  /// `digits[.digits]` exactly (nullopt-like NotRational on other characters).
  static Exact from_decimal(std::string_view text) {
    if (auto q = parse_decimal(text)) return *q;
    std::size_t dot = text.find('.');
    std::string digits(text.substr(0, dot));
    std::size_t frac = 0;
    if (dot != std::string_view::npos) {
      frac = text.size() - dot - 1;
      digits.append(text.substr(dot + 1));
    }
    auto num = BigInt::from_decimal(digits);
    auto den = BigInt::pow(BigInt(10), frac, kMaxExactBits);
    if (!num || digits.empty() || digits[0] == '-') return not_rational();
    if (!den) return too_large();
    return fraction(*num, *den);
  }

  Kind kind() const { return kind_; }
  bool has_value() const { return kind_ == Kind::Value; }
  bool is_too_large() const { return kind_ == Kind::TooLarge; }
  /// The 128-bit value; null for big values and non-values.
  const Rational* small() const { return has_value() && !big_ ? &small_ : nullptr; }
  bool is_integer() const { return has_value() && (big_ ? big_->den.is_one() : small_.den == 1); }
  bool is_zero() const { return small() && small_.num == 0; }
  int sign() const {
    if (!has_value()) return 0;
    if (big_) return big_->num.sign();
    return small_.num < 0 ? -1 : small_.num > 0;
  }
  BigInt numerator() const { return big_ ? big_->num : BigInt(small_.num); }
  BigInt denominator() const { return big_ ? big_->den : BigInt(small_.den); }
  /// Bits of numerator plus denominator (a cost measure: results of powers scale with it).
  std::size_t bit_size() const {
    if (big_) return big_->num.bit_length() + big_->den.bit_length();
    auto bits = [](i128 v) {
      auto u = static_cast<unsigned __int128>(v < 0 ? -v : v);
      std::size_t b = 0;
      for (; u >> 32; u >>= 32) b += 32;
      return b + (u ? 32 - static_cast<std::size_t>(__builtin_clz(static_cast<std::uint32_t>(u))) : 0);
    };
    return bits(small_.num) + bits(small_.den);
  }
  /// Size of a big value in limbs (numerator and denominator); 0 for 128-bit values.
  std::size_t limb_count() const { return big_ ? big_->num.limb_count() + big_->den.limb_count() : 0; }
  double to_double() const {
    if (!has_value()) return std::nan("");
    if (!big_) return small_.to_double();
    auto [nm, ne] = big_->num.mantissa_exponent();
    auto [dm, de] = big_->den.mantissa_exponent();
    double v = std::ldexp(nm / dm, static_cast<int>(std::clamp<std::int64_t>(
                                       static_cast<std::int64_t>(ne) - static_cast<std::int64_t>(de), -4096, 4096)));
    return big_->num.is_negative() ? -v : v;
  }
  /// log2 of the absolute value (-inf for zero), for magnitudes beyond double's range.
  double log2_abs() const { return numerator().log2_abs() - denominator().log2_abs(); }
  /// "num/den" or "num"; "not_rational", "too_large" (messages and tests).
  std::string to_string() const {
    if (kind_ == Kind::NotRational) return "not_rational";
    if (kind_ == Kind::TooLarge) return "too_large";
    std::string s = numerator().to_decimal();
    return is_integer() ? s : s + "/" + denominator().to_decimal();
  }

  /// Equal values; a non-value equals nothing (not even itself).
  friend bool operator==(const Exact& a, const Exact& b) {
    if (!a.has_value() || !b.has_value() || !a.big_ != !b.big_) return false;  // one representation per value
    if (!a.big_) return a.small_ == b.small_;
    return a.big_->num == b.big_->num && a.big_->den == b.big_->den;
  }
  friend bool operator!=(const Exact& a, const Exact& b) { return !(a == b); }

  friend Exact operator+(const Exact& a, const Exact& b) {
    if (!a.has_value() || !b.has_value()) return non_value(a, b);
    if (!a.big_ && !b.big_)
      if (auto r = a.small_ + b.small_) return *r;
    BigInt an = a.numerator(), ad = a.denominator(), bn = b.numerator(), bd = b.denominator();
    // Knuth 4.5.1: with g = gcd(ad, bd), only gcd(t, g) can remain in the sum's lowest terms.
    if (ad.is_one() && bd.is_one()) return reduced(an + bn, std::move(ad));
    BigInt g = BigInt::gcd(ad, bd);
    if (g.is_one()) return reduced(an * bd + bn * ad, ad * bd);
    BigInt t = an * (bd / g) + bn * (ad / g);
    BigInt g2 = BigInt::gcd(t, g);
    return reduced(t / g2, (ad / g) * (bd / g2));
  }
  friend Exact operator-(const Exact& a, const Exact& b) { return a + (-b); }
  friend Exact operator*(const Exact& a, const Exact& b) {
    if (!a.has_value() || !b.has_value()) return non_value(a, b);
    if (!a.big_ && !b.big_)
      if (auto r = a.small_ * b.small_) return *r;
    BigInt an = a.numerator(), ad = a.denominator(), bn = b.numerator(), bd = b.denominator();
    cross_reduce(an, bd);  // the factors stay small and the product is in lowest terms
    cross_reduce(bn, ad);
    return reduced(an * bn, ad * bd);
  }
  friend Exact operator/(const Exact& a, const Exact& b) { return a * b.reciprocal(); }

  Exact operator-() const {
    if (!has_value()) return *this;
    if (!big_)
      if (auto r = negate(small_)) return *r;
    return reduced(-numerator(), denominator());
  }
  Exact abs() const { return sign() < 0 ? -*this : *this; }
  /// 1/x; NotRational for 0.
  Exact reciprocal() const {
    if (!has_value()) return *this;
    if (is_zero()) return not_rational();
    if (!big_)
      if (auto r = math::reciprocal(small_)) return *r;
    BigInt n = numerator(), d = denominator();
    return n.is_negative() ? reduced(-d, -n) : reduced(std::move(d), std::move(n));
  }

  /// x^e for an integer exponent (NotRational otherwise, and for 0^negative); TooLarge when the
  /// result exceeds kMaxExactBits.
  Exact pow(const Exact& exponent) const {
    if (!has_value() || !exponent.has_value()) return non_value(*this, exponent);
    if (!exponent.is_integer()) return not_rational();
    const Rational* e = exponent.small();
    constexpr i128 kHuge = static_cast<i128>(1) << 62;
    if (!e || e->num > kHuge || e->num < -kHuge) {  // only 0, 1 and -1 survive such exponents
      if (is_zero()) return exponent.sign() > 0 ? *this : not_rational();
      if (*this == integer(1)) return *this;
      if (*this == integer(-1)) return exponent.numerator().is_odd() ? *this : integer(1);
      return too_large();
    }
    if (!big_ && e->num >= -4096 && e->num <= 4096)
      if (auto r = pow_int(small_, e->num)) return *r;
    if (is_zero()) return e->num >= 0 ? (e->num == 0 ? integer(1) : *this) : not_rational();
    auto magnitude = static_cast<std::uint64_t>(e->num < 0 ? -e->num : e->num);
    auto n = BigInt::pow(numerator(), magnitude, kMaxExactBits);
    auto d = n ? BigInt::pow(denominator(), magnitude, kMaxExactBits) : std::nullopt;
    if (!n || !d) return too_large();
    Exact r = reduced(std::move(*n), std::move(*d));  // powers of coprime numbers stay coprime
    return e->num < 0 ? r.reciprocal() : r;
  }
  /// The square root when numerator and denominator are perfect squares, else NotRational.
  Exact sqrt() const {
    if (!has_value()) return *this;
    if (sign() < 0) return not_rational();
    if (!big_) {
      auto r = exact_sqrt(small_);
      return r ? Exact(*r) : not_rational();
    }
    BigInt n = BigInt::isqrt(big_->num), d = BigInt::isqrt(big_->den);
    if (n * n != big_->num || d * d != big_->den) return not_rational();
    return reduced(std::move(n), std::move(d));
  }
  /// n! for an integer 0 <= n <= kMaxExactFactorial; TooLarge above, NotRational otherwise.
  Exact factorial() const {
    if (!has_value()) return *this;
    if (!is_integer() || sign() < 0) return not_rational();
    const Rational* q = small();
    if (!q || q->num > kMaxExactFactorial) return too_large();
    BigInt r(1);
    for (std::uint64_t k = 2, n = static_cast<std::uint64_t>(q->num); k <= n;) {
      std::uint64_t chunk = 1;  // multiply several factors on machine words first
      for (; k <= n && chunk <= (std::uint64_t{1} << 40); ++k) chunk *= k;
      r = r * BigInt(static_cast<i128>(chunk));
    }
    return reduced(std::move(r), BigInt(1));
  }
  /// n choose k for an integer 0 <= k <= kMaxExactFactorial and any rational n (falling
  /// factorial over k!); 0 when n is an integer below k.
  static Exact binomial(const Exact& n, const Exact& k) {
    if (!n.has_value() || !k.has_value()) return non_value(n, k);
    if (!k.is_integer() || k.sign() < 0) return not_rational();
    if (n.is_integer() && n.sign() >= 0 && (k - n).sign() > 0) return integer(0);
    Exact kk = k;
    if (n.is_integer() && n.sign() >= 0 && ((n - k) - k).sign() < 0) kk = n - k;  // C(n, k) = C(n, n - k)
    const Rational* q = kk.small();
    if (!q || q->num > kMaxExactFactorial) return too_large();
    if (n.is_integer()) {  // on integers: after step j the product is C(n - k + j, j), growing with j
      BigInt r(1), top = n.numerator() - BigInt(q->num);
      for (i128 j = 1; j <= q->num; ++j) {
        r = r * (top + BigInt(j)) / BigInt(j);  // exact: j consecutive integers hold a multiple of j!
        if (r.bit_length() > kMaxExactBits) return too_large();
      }
      return reduced(std::move(r), BigInt(1));
    }
    Exact r = integer(1);
    for (i128 j = 1; j <= q->num && r.has_value(); ++j) r = r * (n - integer(q->num - j)) / integer(j);
    return r;
  }

 private:
  struct Big {
    BigInt num, den;
  };
  Kind kind_ = Kind::NotRational;
  Rational small_;
  std::shared_ptr<const Big> big_;  // set only when the value does not fit 128 bits; immutable

  /// Divides x and d by their gcd (for a product's cross terms); nothing to do when d is 1.
  static void cross_reduce(BigInt& x, BigInt& d) {
    if (d.is_one()) return;
    BigInt g = BigInt::gcd(x, d);
    if (g.is_one() || g.is_zero()) return;
    x = x / g;
    d = d / g;
  }
  /// The result of an operation on a non-value: TooLarge if either operand is.
  static Exact non_value(const Exact& a, const Exact& b) {
    return a.is_too_large() || b.is_too_large() ? too_large() : not_rational();
  }
  /// num / den already in lowest terms with den > 0: capped, and 128-bit whenever it fits.
  static Exact reduced(BigInt num, BigInt den) {
    if (num.bit_length() > kMaxExactBits || den.bit_length() > kMaxExactBits) return too_large();
    auto n = num.to_i128(), d = den.to_i128();
    if (n && d) return Rational{*n, *d};
    Exact e;
    e.kind_ = Kind::Value;
    e.big_ = std::make_shared<const Big>(Big{std::move(num), std::move(den)});
    return e;
  }
};

}  // namespace genprm::math
