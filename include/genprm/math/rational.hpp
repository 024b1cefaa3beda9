#pragma once
// Exact rationals on 128-bit integers with overflow detection. Every operation returns
// std::nullopt instead of overflowing: the fast path of Exact (exact.hpp), which then continues
// on big integers.
#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

namespace genprm::math {

using i128 = __int128;

/// A reduced fraction num/den with den > 0.
struct Rational {
  i128 num = 0;
  i128 den = 1;

  static std::optional<Rational> make(i128 n, i128 d) {
    if (d == 0 || n == min128() || d == min128()) return std::nullopt;  // keeps every |value| negatable
    if (d < 0) {
      n = -n;
      d = -d;
    }
    i128 g = gcd(n < 0 ? -n : n, d);
    if (g > 1) {
      n /= g;
      d /= g;
    }
    return Rational{n, d};
  }
  static Rational integer(i128 n) { return Rational{n, 1}; }

  bool is_zero() const { return num == 0; }
  bool is_integer() const { return den == 1; }
  double to_double() const { return static_cast<double>(static_cast<long double>(num) / static_cast<long double>(den)); }
  friend bool operator==(const Rational& a, const Rational& b) { return a.num == b.num && a.den == b.den; }
  friend bool operator!=(const Rational& a, const Rational& b) { return !(a == b); }

  static constexpr i128 min128() { return static_cast<i128>(static_cast<unsigned __int128>(1) << 127); }
  /// gcd of non-negative values: 64-bit Euclid when both fit, else binary gcd (no 128-bit division).
  static i128 gcd(i128 a, i128 b) {
    using u128 = unsigned __int128;
    u128 x = static_cast<u128>(a < 0 ? -a : a), y = static_cast<u128>(b < 0 ? -b : b);
    if ((x >> 64) == 0 && (y >> 64) == 0) {
      std::uint64_t p = static_cast<std::uint64_t>(x), q = static_cast<std::uint64_t>(y);
      while (q != 0) {
        std::uint64_t t = p % q;
        p = q;
        q = t;
      }
      return static_cast<i128>(p);
    }
    if (x == 0) return static_cast<i128>(y);
    if (y == 0) return static_cast<i128>(x);
    auto ctz = [](u128 v) {
      auto lo = static_cast<std::uint64_t>(v);
      return lo ? __builtin_ctzll(lo) : 64 + __builtin_ctzll(static_cast<std::uint64_t>(v >> 64));
    };
    int shift = ctz(x | y);
    x >>= ctz(x);
    while (y != 0) {
      y >>= ctz(y);
      if (x > y) std::swap(x, y);
      y -= x;
    }
    return static_cast<i128>(x << shift);
  }
};

inline std::optional<i128> checked_mul(i128 a, i128 b) {
  i128 r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}
inline std::optional<i128> checked_add(i128 a, i128 b) {
  i128 r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::optional<Rational> operator+(const Rational& a, const Rational& b) {
  i128 g = Rational::gcd(a.den, b.den);
  auto l = checked_mul(a.num, b.den / g);
  auto r = checked_mul(b.num, a.den / g);
  auto d = checked_mul(a.den / g, b.den);
  if (!l || !r || !d) return std::nullopt;
  auto n = checked_add(*l, *r);
  if (!n) return std::nullopt;
  return Rational::make(*n, *d);
}
inline std::optional<Rational> negate(const Rational& a) {
  if (a.num == Rational::min128()) return std::nullopt;
  return Rational{-a.num, a.den};
}
inline std::optional<Rational> operator-(const Rational& a, const Rational& b) {
  auto nb = negate(b);
  if (!nb) return std::nullopt;
  return a + *nb;
}
inline std::optional<Rational> operator*(const Rational& a, const Rational& b) {
  // Cross-reduce first so that products stay small.
  i128 g1 = Rational::gcd(a.num < 0 ? -a.num : a.num, b.den);
  i128 g2 = Rational::gcd(b.num < 0 ? -b.num : b.num, a.den);
  if (g1 == 0) g1 = 1;
  if (g2 == 0) g2 = 1;
  auto n = checked_mul(a.num / g1, b.num / g2);
  auto d = checked_mul(a.den / g2, b.den / g1);
  if (!n || !d) return std::nullopt;
  return Rational::make(*n, *d);
}
inline std::optional<Rational> reciprocal(const Rational& a) {
  if (a.num == 0) return std::nullopt;
  return Rational::make(a.den, a.num);
}
inline std::optional<Rational> operator/(const Rational& a, const Rational& b) {
  auto r = reciprocal(b);
  if (!r) return std::nullopt;
  return a * *r;
}
/// a^e for an integer exponent; nullopt on overflow, 0^negative, or |e| > 4096.
inline std::optional<Rational> pow_int(Rational a, i128 e) {
  if (e > 4096 || e < -4096) {
    // Only trivial bases survive such exponents.
    if (a.num == 1 && a.den == 1) return a;
    if (a.num == 0 && e > 0) return a;
    return std::nullopt;
  }
  bool neg = e < 0;
  if (neg) e = -e;
  Rational result = Rational::integer(1);
  Rational base = a;
  while (e > 0) {
    if (e & 1) {
      auto r = result * base;
      if (!r) return std::nullopt;
      result = *r;
    }
    e >>= 1;
    if (e > 0) {
      auto b = base * base;
      if (!b) return std::nullopt;
      base = *b;
    }
  }
  if (neg) return reciprocal(result);
  return result;
}
/// Exact integer square root when n >= 0 is a perfect square.
inline std::optional<i128> exact_isqrt(i128 n) {
  if (n < 0) return std::nullopt;
  if (n < 2) return n;
  long double approx = std::sqrt(static_cast<long double>(n));
  i128 r = static_cast<i128>(approx);
  for (i128 c = (r > 2 ? r - 2 : 0); c <= r + 2; ++c) {
    i128 sq;
    if (__builtin_mul_overflow(c, c, &sq)) break;
    if (sq == n) return c;
  }
  return std::nullopt;
}
/// Exact sqrt of a rational when numerator and denominator are perfect squares.
inline std::optional<Rational> exact_sqrt(const Rational& a) {
  auto n = exact_isqrt(a.num);
  auto d = exact_isqrt(a.den);
  if (!n || !d) return std::nullopt;
  return Rational{*n, *d};
}

/// Parses digits[.digits] exactly (nullopt when the value does not fit in 128 bits).
inline std::optional<Rational> parse_decimal(std::string_view digits) {
  i128 num = 0, den = 1;
  bool frac = false;
  for (char c : digits) {
    if (c == '.') {
      if (frac) return std::nullopt;
      frac = true;
      continue;
    }
    if (c < '0' || c > '9') return std::nullopt;
    auto m = checked_mul(num, 10);
    if (!m) return std::nullopt;
    auto s = checked_add(*m, c - '0');
    if (!s) return std::nullopt;
    num = *s;
    if (frac) {
      auto d = checked_mul(den, 10);
      if (!d) return std::nullopt;
      den = *d;
    }
  }
  return Rational::make(num, den);
}

}  // namespace genprm::math
