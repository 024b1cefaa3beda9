#pragma once
// Arbitrary-precision integers for exact grading: a sign and a magnitude of 32-bit limbs
// (products and quotients of two limbs fit in 64 bits), schoolbook multiplication and Knuth's
// algorithm D for division. Answers need a few thousand bits at most and the grader caps sizes
// (exact.hpp), so quadratic algorithms are fast enough; no external dependency.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace genprm::math {

class BigInt {
 public:
  using Limb = std::uint32_t;

  BigInt() = default;
  BigInt(__int128 value) {  // NOLINT(google-explicit-constructor): integers convert losslessly
    negative_ = value < 0;
    auto mag = negative_ ? static_cast<unsigned __int128>(0) - static_cast<unsigned __int128>(value)
                         : static_cast<unsigned __int128>(value);
    while (mag != 0) {
      limbs_.push_back(static_cast<Limb>(mag));
      mag >>= 32;
    }
  }

  /// Parses an optional '-' and decimal digits; nullopt on anything else.
  static std::optional<BigInt> from_decimal(std::string_view text) {
    bool negative = !text.empty() && text[0] == '-';
    if (negative) text.remove_prefix(1);
    if (text.empty()) return std::nullopt;
    BigInt r;
    // Nine digits at a time: 10^9 < 2^32.
    std::size_t head = text.size() % 9 == 0 ? 9 : text.size() % 9;
    for (std::size_t i = 0; i < text.size(); head = 9) {
      Limb chunk = 0;
      for (std::size_t k = 0; k < head; ++k, ++i) {
        char c = text[i];
        if (c < '0' || c > '9') return std::nullopt;
        chunk = chunk * 10 + static_cast<Limb>(c - '0');
      }
      r.multiply_add_small(1000000000u, chunk);
    }
    r.negative_ = negative && !r.is_zero();
    return r;
  }

  std::string to_decimal() const {
    if (is_zero()) return "0";
    std::vector<Limb> mag = limbs_;
    std::vector<Limb> chunks;  // base 10^9, least significant first
    while (!mag.empty()) chunks.push_back(divide_small_in_place(mag, 1000000000u));
    std::string out = negative_ ? "-" : "";
    out += std::to_string(chunks.back());
    for (std::size_t k = chunks.size() - 1; k-- > 0;) {
      std::string part = std::to_string(chunks[k]);
      out.append(9 - part.size(), '0');
      out += part;
    }
    return out;
  }

  bool is_zero() const { return limbs_.empty(); }
  bool is_negative() const { return negative_; }
  bool is_one() const { return !negative_ && limbs_.size() == 1 && limbs_[0] == 1; }
  bool is_odd() const { return !limbs_.empty() && (limbs_[0] & 1u); }
  int sign() const { return is_zero() ? 0 : negative_ ? -1 : 1; }
  std::size_t limb_count() const { return limbs_.size(); }
  /// Bits of |x| (0 for zero).
  std::size_t bit_length() const {
    if (limbs_.empty()) return 0;
    return 32 * (limbs_.size() - 1) + (32 - static_cast<std::size_t>(__builtin_clz(limbs_.back())));
  }

  /// The value when it lies in [-(2^127 - 1), 2^127 - 1] (so that it can always be negated).
  std::optional<__int128> to_i128() const {
    if (bit_length() > 127) return std::nullopt;
    unsigned __int128 mag = 0;
    for (std::size_t k = limbs_.size(); k-- > 0;) mag = (mag << 32) | limbs_[k];
    auto v = static_cast<__int128>(mag);
    return negative_ ? -v : v;
  }

  /// |x| ~= mantissa * 2^exponent with the mantissa the top 64 bits (exact below 2^64): for
  /// values beyond double's range (ratios, logarithms).
  std::pair<double, std::size_t> mantissa_exponent() const {
    std::size_t bits = bit_length();
    std::size_t shift = bits > 64 ? bits - 64 : 0;
    return {static_cast<double>(shifted_right(shift).abs().low64()), shift};
  }
  /// log2|x| (-inf for zero).
  double log2_abs() const {
    if (is_zero()) return -HUGE_VAL;
    auto [m, e] = mantissa_exponent();
    return std::log2(m) + static_cast<double>(e);
  }
  double to_double() const {  // +-inf beyond double's range
    auto [m, e] = mantissa_exponent();
    double v = std::ldexp(m, static_cast<int>(std::min<std::size_t>(e, 4096)));
    return negative_ ? -v : v;
  }

  BigInt operator-() const {
    BigInt r = *this;
    r.negative_ = !r.negative_ && !r.is_zero();
    return r;
  }
  BigInt abs() const {
    BigInt r = *this;
    r.negative_ = false;
    return r;
  }

  friend int compare(const BigInt& a, const BigInt& b) {
    if (a.negative_ != b.negative_) return a.negative_ ? -1 : 1;
    int m = compare_magnitude(a.limbs_, b.limbs_);
    return a.negative_ ? -m : m;
  }
  friend bool operator==(const BigInt& a, const BigInt& b) { return a.negative_ == b.negative_ && a.limbs_ == b.limbs_; }
  friend bool operator!=(const BigInt& a, const BigInt& b) { return !(a == b); }
  friend bool operator<(const BigInt& a, const BigInt& b) { return compare(a, b) < 0; }

  friend BigInt operator+(const BigInt& a, const BigInt& b) { return signed_add(a, b, b.negative_); }
  friend BigInt operator-(const BigInt& a, const BigInt& b) { return signed_add(a, b, !b.negative_); }
  friend BigInt operator*(const BigInt& a, const BigInt& b) {
    BigInt r;
    if (a.is_zero() || b.is_zero()) return r;
    const std::vector<Limb>&x = a.limbs_, &y = b.limbs_;
    r.limbs_.assign(x.size() + y.size(), 0);
    for (std::size_t i = 0; i < x.size(); ++i) {
      std::uint64_t carry = 0;
      for (std::size_t j = 0; j < y.size(); ++j) {
        std::uint64_t t = static_cast<std::uint64_t>(x[i]) * y[j] + r.limbs_[i + j] + carry;
        r.limbs_[i + j] = static_cast<Limb>(t);
        carry = t >> 32;
      }
      r.limbs_[i + y.size()] = static_cast<Limb>(carry);
    }
    r.trim();
    r.negative_ = a.negative_ != b.negative_;
    return r;
  }

  /// Truncating division: the quotient rounds toward zero, the remainder has a's sign. b != 0.
  static void divmod(const BigInt& a, const BigInt& b, BigInt& quotient, BigInt& remainder) {
    std::vector<Limb> q, r;
    divmod_magnitude(a.limbs_, b.limbs_, q, r);
    quotient.limbs_ = std::move(q);
    remainder.limbs_ = std::move(r);
    quotient.negative_ = a.negative_ != b.negative_ && !quotient.is_zero();
    remainder.negative_ = a.negative_ && !remainder.is_zero();
  }
  friend BigInt operator/(const BigInt& a, const BigInt& b) {
    BigInt q, r;
    divmod(a, b, q, r);
    return q;
  }
  friend BigInt operator%(const BigInt& a, const BigInt& b) {
    BigInt q, r;
    divmod(a, b, q, r);
    return r;
  }

  /// gcd(|a|, |b|): a division step while the sizes are far apart (gcd(n!, 7)), then binary gcd
  /// in place (shifts and subtractions, no allocation), finished on 128-bit words.
  static BigInt gcd(BigInt a, BigInt b) {
    a.negative_ = b.negative_ = false;
    for (;;) {
      if (a.limbs_.size() < b.limbs_.size()) std::swap(a, b);
      if (b.is_zero()) return a;
      if (a.limbs_.size() <= b.limbs_.size() + 1) break;
      BigInt q, r;
      divmod(a, b, q, r);
      a = std::move(r);
    }
    BigInt r;
    r.limbs_ = binary_gcd(std::move(a.limbs_), std::move(b.limbs_));
    return r;
  }

  /// base^exponent, or nullopt when |result| would exceed max_bits bits. Left-to-right square
  /// and multiply: every intermediate is a power of base below the result, so none exceeds it.
  static std::optional<BigInt> pow(const BigInt& base, std::uint64_t exponent, std::size_t max_bits) {
    if (exponent == 0) return BigInt(1);
    std::size_t bits = base.bit_length();
    if (bits <= 1) return (base.negative_ && exponent % 2 == 0) ? base.abs() : base;  // 0, 1, -1
    if ((bits - 1) > max_bits / exponent) return std::nullopt;  // |base|^e >= 2^((bits-1) e)
    BigInt r(1);
    for (int k = 63 - __builtin_clzll(exponent); k >= 0; --k) {
      r = r * r;
      if ((exponent >> k) & 1u) r = r * base;
      if (r.bit_length() > max_bits) return std::nullopt;
    }
    return r;
  }

  /// floor(sqrt(x)) for x >= 0: the root of the top half of the bits (recursively) gives a start
  /// within a factor 1 + 2^-(bits/4) above the root, and Newton's iteration from above finishes.
  static BigInt isqrt(const BigInt& x) {
    std::size_t bits = x.bit_length();
    if (bits <= 52) return BigInt(static_cast<__int128>(std::sqrt(static_cast<double>(x.low64()))) + 1).newton_sqrt_from(x);
    std::size_t k = bits / 4;
    BigInt start = (isqrt(x.shifted_right(2 * k)) + BigInt(1)).shifted_left(k);  // >= sqrt(x)
    return start.newton_sqrt_from(x);
  }

  BigInt shifted_left(std::size_t bits) const {
    if (is_zero()) return *this;
    BigInt r;
    r.negative_ = negative_;
    r.limbs_.assign(bits / 32, 0);
    unsigned s = bits % 32;
    Limb carry = 0;
    for (Limb l : limbs_) {
      r.limbs_.push_back(s ? (l << s) | carry : l);
      carry = s ? l >> (32 - s) : 0;
    }
    if (carry) r.limbs_.push_back(carry);
    return r;
  }
  /// |x| >> bits, with x's sign (truncates toward zero).
  BigInt shifted_right(std::size_t bits) const {
    BigInt r;
    std::size_t drop = bits / 32;
    if (drop >= limbs_.size()) return r;
    unsigned s = bits % 32;
    for (std::size_t k = drop; k < limbs_.size(); ++k) {
      Limb hi = k + 1 < limbs_.size() ? limbs_[k + 1] : 0;
      r.limbs_.push_back(s ? (limbs_[k] >> s) | (hi << (32 - s)) : limbs_[k]);
    }
    r.trim();
    r.negative_ = negative_ && !r.is_zero();
    return r;
  }

 private:
  bool negative_ = false;
  std::vector<Limb> limbs_;  // magnitude, least significant first, no leading zero limbs

  void trim() {
    while (!limbs_.empty() && limbs_.back() == 0) limbs_.pop_back();
    if (limbs_.empty()) negative_ = false;
  }
  std::uint64_t low64() const {
    std::uint64_t v = limbs_.empty() ? 0 : limbs_[0];
    if (limbs_.size() > 1) v |= static_cast<std::uint64_t>(limbs_[1]) << 32;
    return v;
  }

  void multiply_add_small(Limb factor, Limb addend) {
    std::uint64_t carry = addend;
    for (Limb& l : limbs_) {
      std::uint64_t t = static_cast<std::uint64_t>(l) * factor + carry;
      l = static_cast<Limb>(t);
      carry = t >> 32;
    }
    if (carry) limbs_.push_back(static_cast<Limb>(carry));
  }
  /// mag /= divisor in place (trimmed); returns the remainder.
  static Limb divide_small_in_place(std::vector<Limb>& mag, Limb divisor) {
    std::uint64_t rem = 0;
    for (std::size_t k = mag.size(); k-- > 0;) {
      std::uint64_t cur = (rem << 32) | mag[k];
      mag[k] = static_cast<Limb>(cur / divisor);
      rem = cur % divisor;
    }
    while (!mag.empty() && mag.back() == 0) mag.pop_back();
    return static_cast<Limb>(rem);
  }

  /// Newton's iteration for floor(sqrt(x)) from *this >= sqrt(x): decreases until it stops.
  BigInt newton_sqrt_from(const BigInt& x) const {
    BigInt r = *this;
    if (x.is_zero()) return x;
    for (;;) {
      BigInt next = (r + x / r).shifted_right(1);
      if (compare(next, r) >= 0) return r;
      r = std::move(next);
    }
  }
  static std::size_t trailing_zeros(const std::vector<Limb>& x) {
    std::size_t k = 0;
    while (x[k] == 0) ++k;
    return 32 * k + static_cast<std::size_t>(__builtin_ctz(x[k]));
  }
  /// x >>= bits in place (x non-zero, bits below its length).
  static void shift_right_in_place(std::vector<Limb>& x, std::size_t bits) {
    std::size_t drop = bits / 32;
    unsigned s = bits % 32;
    std::size_t n = x.size() - drop;
    for (std::size_t k = 0; k < n; ++k) {
      Limb hi = k + drop + 1 < x.size() ? x[k + drop + 1] : 0;
      x[k] = s ? (x[k + drop] >> s) | (hi << (32 - s)) : x[k + drop];
    }
    x.resize(n);
    while (!x.empty() && x.back() == 0) x.pop_back();
  }
  static unsigned __int128 to_u128(const std::vector<Limb>& x) {
    unsigned __int128 v = 0;
    for (std::size_t k = x.size(); k-- > 0;) v = (v << 32) | x[k];
    return v;
  }
  /// Stein's binary gcd of two non-zero magnitudes.
  static std::vector<Limb> binary_gcd(std::vector<Limb> x, std::vector<Limb> y) {
    const std::size_t shift = std::min(trailing_zeros(x), trailing_zeros(y));
    shift_right_in_place(x, trailing_zeros(x));
    for (;;) {  // x odd
      shift_right_in_place(y, trailing_zeros(y));
      if (compare_magnitude(x, y) > 0) std::swap(x, y);
      if (y.size() <= 4) {  // both fit 128 bits: finish on words
        unsigned __int128 p = to_u128(x), q = to_u128(y);
        while (p != 0) {
          while ((p & 1) == 0) p >>= 1;
          if (p < q) std::swap(p, q);
          p -= q;
        }
        BigInt g(0);
        for (; q != 0; q >>= 32) g.limbs_.push_back(static_cast<Limb>(q));
        return g.shifted_left(shift).limbs_;
      }
      std::int64_t borrow = 0;  // y -= x (y >= x)
      for (std::size_t k = 0; k < y.size() && (borrow || k < x.size()); ++k) {
        std::int64_t t = static_cast<std::int64_t>(y[k]) - (k < x.size() ? x[k] : 0) - borrow;
        borrow = t < 0;
        y[k] = static_cast<Limb>(t + (borrow ? (std::int64_t{1} << 32) : 0));
      }
      while (!y.empty() && y.back() == 0) y.pop_back();
      if (y.empty()) {
        BigInt g;
        g.limbs_ = std::move(x);
        return g.shifted_left(shift).limbs_;
      }
    }
  }

  static int compare_magnitude(const std::vector<Limb>& a, const std::vector<Limb>& b) {
    if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
    for (std::size_t k = a.size(); k-- > 0;)
      if (a[k] != b[k]) return a[k] < b[k] ? -1 : 1;
    return 0;
  }

  /// a + b, where b is taken with sign `b_negative` (subtraction flips it).
  static BigInt signed_add(const BigInt& a, const BigInt& b, bool b_negative) {
    BigInt r;
    if (a.negative_ == b_negative) {
      const auto& big = a.limbs_.size() >= b.limbs_.size() ? a.limbs_ : b.limbs_;
      const auto& small = a.limbs_.size() >= b.limbs_.size() ? b.limbs_ : a.limbs_;
      r.limbs_ = big;
      std::uint64_t carry = 0;
      for (std::size_t k = 0; k < r.limbs_.size() && (carry || k < small.size()); ++k) {
        std::uint64_t t = static_cast<std::uint64_t>(r.limbs_[k]) + (k < small.size() ? small[k] : 0) + carry;
        r.limbs_[k] = static_cast<Limb>(t);
        carry = t >> 32;
      }
      if (carry) r.limbs_.push_back(1);
      r.negative_ = a.negative_;
    } else {
      int m = compare_magnitude(a.limbs_, b.limbs_);
      if (m == 0) return r;
      const auto& big = m > 0 ? a.limbs_ : b.limbs_;
      const auto& small = m > 0 ? b.limbs_ : a.limbs_;
      r.limbs_ = big;
      std::int64_t borrow = 0;
      for (std::size_t k = 0; k < r.limbs_.size() && (borrow || k < small.size()); ++k) {
        std::int64_t t = static_cast<std::int64_t>(r.limbs_[k]) - (k < small.size() ? small[k] : 0) - borrow;
        borrow = t < 0;
        r.limbs_[k] = static_cast<Limb>(t + (borrow ? (std::int64_t{1} << 32) : 0));
      }
      r.negative_ = m > 0 ? a.negative_ : b_negative;
    }
    r.trim();
    return r;
  }

  /// Knuth, TAOCP vol. 2, 4.3.1, algorithm D (after Hacker's Delight's divmnu): u = q v + r.
  static void divmod_magnitude(const std::vector<Limb>& u, const std::vector<Limb>& v, std::vector<Limb>& q,
                               std::vector<Limb>& r) {
    q.clear();
    r.clear();
    if (compare_magnitude(u, v) < 0) {
      r = u;
      return;
    }
    const std::size_t n = v.size(), m = u.size() - n;
    if (n == 1) {
      q = u;
      Limb rem = divide_small_in_place(q, v[0]);
      if (rem) r.push_back(rem);
      return;
    }
    // Normalise so that the divisor's top limb has its high bit set: then each quotient-limb
    // estimate is at most 2 too large.
    const unsigned s = static_cast<unsigned>(__builtin_clz(v[n - 1]));
    std::vector<Limb> vn(n), un(u.size() + 1);
    for (std::size_t k = n - 1; k > 0; --k) vn[k] = (v[k] << s) | (s ? v[k - 1] >> (32 - s) : 0);
    vn[0] = v[0] << s;
    un[u.size()] = s ? u[u.size() - 1] >> (32 - s) : 0;
    for (std::size_t k = u.size() - 1; k > 0; --k) un[k] = (u[k] << s) | (s ? u[k - 1] >> (32 - s) : 0);
    un[0] = u[0] << s;
    q.assign(m + 1, 0);
    constexpr std::uint64_t kBase = std::uint64_t{1} << 32;
    for (std::size_t j = m + 1; j-- > 0;) {
      std::uint64_t num = (static_cast<std::uint64_t>(un[j + n]) << 32) | un[j + n - 1];
      std::uint64_t qhat = num / vn[n - 1], rhat = num % vn[n - 1];
      while (qhat >= kBase || qhat * vn[n - 2] > ((rhat << 32) | un[j + n - 2])) {
        --qhat;
        rhat += vn[n - 1];
        if (rhat >= kBase) break;
      }
      std::int64_t borrow = 0, t = 0;
      for (std::size_t i = 0; i < n; ++i) {
        std::uint64_t p = qhat * vn[i];
        t = static_cast<std::int64_t>(un[i + j]) - borrow - static_cast<std::int64_t>(p & 0xFFFFFFFFu);
        un[i + j] = static_cast<Limb>(t);
        borrow = static_cast<std::int64_t>(p >> 32) - (t >> 32);
      }
      t = static_cast<std::int64_t>(un[j + n]) - borrow;
      un[j + n] = static_cast<Limb>(t);
      if (t < 0) {  // the estimate was one too large: add the divisor back
        --qhat;
        std::uint64_t carry = 0;
        for (std::size_t i = 0; i < n; ++i) {
          std::uint64_t sum = static_cast<std::uint64_t>(un[i + j]) + vn[i] + carry;
          un[i + j] = static_cast<Limb>(sum);
          carry = sum >> 32;
        }
        un[j + n] += static_cast<Limb>(carry);
      }
      q[j] = static_cast<Limb>(qhat);
    }
    while (!q.empty() && q.back() == 0) q.pop_back();
    r.resize(n);
    for (std::size_t k = 0; k < n; ++k) r[k] = (un[k] >> s) | (s ? un[k + 1] << (32 - s) : 0);
    while (!r.empty() && r.back() == 0) r.pop_back();
  }
};

}  // namespace genprm::math
