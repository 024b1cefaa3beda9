#pragma once
// Expression trees for answers: a bounded recursive-descent parser for LaTeX / plain math
// (numbers, variables, + - * / ^, implicit products, \frac, \sqrt[n], \binom, |x|, n!, \pi, e, i,
// trig/hyperbolic/log/exp functions, \pm) and two evaluators:
//   * exact: Exact (exact.hpp: 128-bit rationals, big integers on overflow, TooLarge past a cap)
//     for rational functions at rational points, with a bounded amount of work;
//   * numeric: std::complex<double> on kPoints lanes at once (an Eigen array per node), so square
//     roots and logarithms of negative numbers stay defined (principal branch) instead of failing.
// Nodes are stored in creation order and children always precede parents, so both evaluators are
// loops, not recursions. Parse depth and node count are capped: the cost of a call is bounded.
#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Core>

#include "genprm/math/exact.hpp"
#include "genprm/math/normalize.hpp"
#include "genprm/math/rational.hpp"

namespace genprm::math {

inline constexpr int kPoints = 8;           // evaluation lanes; lanes 0-3 have all variables > 0
inline constexpr int kMaxNodes = 2048;      // per expression
inline constexpr int kMaxDepth = 96;        // parser recursion
inline constexpr int kMaxVariables = 16;

using cplx = std::complex<double>;
using Lanes = Eigen::Array<cplx, kPoints, 1>;

enum class Op : std::uint8_t {
  Num, Var, Pi, E, I, Inf, Add, Sub, Mul, Div, Neg, Pow, Sqrt, Root, Abs, Fact, Binom, Func, Log
};
enum class Fn : std::uint8_t { None, Sin, Cos, Tan, Cot, Sec, Csc, Asin, Acos, Atan, Sinh, Cosh, Tanh, Ln, Exp };

struct Node {
  Op op = Op::Num;
  Fn fn = Fn::None;
  int a = -1, b = -1;  // children (indices of earlier nodes)
  int var = -1;        // Op::Var: index in the VarTable
  Exact q;                    // Op::Num: exact value
  double value = 0;           // Op::Num: floating value
};

/// Variable names shared by the two sides of one comparison.
struct VarTable {
  std::vector<std::string> names;
  int index(std::string_view name) {
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return static_cast<int>(i);
    names.emplace_back(name);
    return static_cast<int>(names.size()) - 1;
  }
};

struct Expr {
  std::vector<Node> nodes;
  int root = -1;
  bool approx = false;  // contains a decimal literal: compare with the 1e-4 relative tolerance
  bool has_vars = false;

  int add(Node n) {
    nodes.push_back(std::move(n));
    return static_cast<int>(nodes.size()) - 1;
  }
  int add(Op op, int a = -1, int b = -1) {
    Node n;
    n.op = op;
    n.a = a;
    n.b = b;
    return add(std::move(n));
  }
  int number(const Exact& q) {
    Node n;
    n.op = Op::Num;
    n.q = q;
    n.value = q.to_double();
    return add(std::move(n));
  }
  bool is_inf(int* sign) const {  // the whole expression is +-infinity
    int s = 1, k = root;
    while (k >= 0 && nodes[k].op == Op::Neg) {
      s = -s;
      k = nodes[k].a;
    }
    if (k >= 0 && nodes[k].op == Op::Inf) {
      *sign = s;
      return true;
    }
    return false;
  }
};

/// The value of variable `var` on lane `lane`: rationals p/q in [0.2, 4), positive on lanes
/// 0-3, with mixed signs on lanes 4-7 (so that sqrt(x^2) != x is seen). Deterministic.
inline Rational variable_value(int var, int lane) {
  static constexpr int kNum[] = {7, 13, 17, 23, 29, 11, 19, 31, 37, 41, 43, 47, 53};
  static constexpr int kDen[] = {5, 11, 13, 7, 17, 9, 19, 23};
  int p = kNum[(var * 5 + lane * 3) % 13];
  int q = kDen[(var * 3 + lane * 5) % 8];
  while (p > 4 * q) p -= 3 * q;
  if (p * 5 < q) p += q;
  bool negative = false;
  if (lane == 4 || lane == 7) negative = true;
  if (lane == 5) negative = (var % 2 == 0);
  if (lane == 6) negative = (var % 2 == 1);
  return Rational{negative ? -p : p, q};
}

namespace detail {

struct Parser {
  std::string_view s;
  std::size_t i = 0;
  Expr& out;
  VarTable& vars;
  int pm_sign = 1;      // value used for \pm (and -value for \mp)
  bool saw_pm = false;
  bool failed = false;
  int depth = 0;
  int abs_depth = 0;

  Parser(std::string_view text, Expr& e, VarTable& v) : s(text), out(e), vars(v) {}

  int fail() {
    failed = true;
    return -1;
  }
  void skip_spaces() {
    while (i < s.size() && s[i] == ' ') ++i;
  }
  char peek() {
    skip_spaces();
    return i < s.size() ? s[i] : '\0';
  }
  bool eat(char c) {
    if (peek() == c) {
      ++i;
      return true;
    }
    return false;
  }
  std::string_view peek_command() {
    skip_spaces();
    if (i >= s.size() || s[i] != '\\') return {};
    return s.substr(i, command_length(s, i));
  }
  bool eat_command(std::string_view name) {
    if (peek_command() == name) {
      i += name.size();
      return true;
    }
    return false;
  }
  int node(Op op, int a = -1, int b = -1) {
    if (failed || (a < 0 && op >= Op::Add) || static_cast<int>(out.nodes.size()) >= kMaxNodes) return fail();
    if ((op == Op::Add || op == Op::Sub || op == Op::Mul || op == Op::Div || op == Op::Pow || op == Op::Binom ||
         op == Op::Log || op == Op::Root) && b < 0)
      return fail();
    return out.add(op, a, b);
  }

  int parse() {
    int r = parse_expr();
    skip_spaces();
    if (failed || i != s.size() || r < 0) return fail();
    out.root = r;
    return r;
  }

  int parse_expr() {
    if (++depth > kMaxDepth) return fail();
    int left = parse_unary();
    while (!failed) {
      char c = peek();
      if (c == '+') {
        ++i;
        left = node(Op::Add, left, parse_term());
      } else if (c == '-') {
        ++i;
        left = node(Op::Sub, left, parse_term());
      } else if (eat_command("\\pm")) {
        saw_pm = true;
        left = node(pm_sign > 0 ? Op::Add : Op::Sub, left, parse_term());
      } else if (eat_command("\\mp")) {
        saw_pm = true;
        left = node(pm_sign > 0 ? Op::Sub : Op::Add, left, parse_term());
      } else {
        break;
      }
    }
    --depth;
    return left;
  }

  int parse_term() {
    if (++depth > kMaxDepth) return fail();
    int left = parse_power();
    left = continue_term(left);
    --depth;
    return left;
  }

  int continue_term(int left) {
    while (!failed) {
      char c = peek();
      if (c == '*' && !(i + 1 < s.size() && s[i + 1] == '*')) {
        ++i;
        left = node(Op::Mul, left, parse_unary_factor());
      } else if (c == '/') {
        ++i;
        left = node(Op::Div, left, parse_unary_factor());
      } else if (eat_command("\\cdot") || eat_command("\\times") || eat_command("\\ast")) {
        left = node(Op::Mul, left, parse_unary_factor());
      } else if (eat_command("\\div")) {
        left = node(Op::Div, left, parse_unary_factor());
      } else if (starts_atom()) {
        bool integer_left = left >= 0 && out.nodes[left].op == Op::Num && out.nodes[left].q.is_integer();
        int right = parse_power();
        // Mixed number: 2\frac{1}{2} is 5/2 (an integer directly followed by a numeric fraction).
        bool mixed = integer_left && right >= 0 && out.nodes[right].op == Op::Div &&
                     out.nodes[out.nodes[right].a].op == Op::Num && out.nodes[out.nodes[right].b].op == Op::Num &&
                     out.nodes[out.nodes[right].a].q.is_integer() && out.nodes[out.nodes[right].b].q.is_integer() &&
                     i > 0 && s[i - 1] == '}';
        left = node(mixed ? Op::Add : Op::Mul, left, right);
      } else {
        break;
      }
    }
    return left;
  }

  // A factor after `*` or `/` may carry a sign: 2 * -3.
  int parse_unary_factor() {
    if (++depth > kMaxDepth) return fail();
    int r;
    if (eat('-')) {
      r = node(Op::Neg, parse_unary_factor());
    } else if (eat('+')) {
      r = parse_unary_factor();
    } else {
      r = parse_power();
    }
    --depth;
    return r;
  }

  int parse_unary() {
    if (++depth > kMaxDepth) return fail();
    int r;
    if (eat('-')) {
      r = node(Op::Neg, parse_term());
    } else if (eat('+')) {
      r = parse_term();
    } else if (eat_command("\\pm")) {
      saw_pm = true;
      int t = parse_term();
      r = pm_sign > 0 ? t : node(Op::Neg, t);
    } else if (eat_command("\\mp")) {
      saw_pm = true;
      int t = parse_term();
      r = pm_sign > 0 ? node(Op::Neg, t) : t;
    } else {
      r = parse_term();
    }
    --depth;
    return r;
  }

  static bool is_function_command(std::string_view c) {
    return fn_of(c) != Fn::None || c == "\\log" || c == "\\lg";
  }
  static Fn fn_of(std::string_view c) {
    if (!c.empty() && c[0] == '\\') c.remove_prefix(1);
    if (c == "sin") return Fn::Sin;
    if (c == "cos") return Fn::Cos;
    if (c == "tan") return Fn::Tan;
    if (c == "cot") return Fn::Cot;
    if (c == "sec") return Fn::Sec;
    if (c == "csc") return Fn::Csc;
    if (c == "arcsin") return Fn::Asin;
    if (c == "arccos") return Fn::Acos;
    if (c == "arctan") return Fn::Atan;
    if (c == "sinh") return Fn::Sinh;
    if (c == "cosh") return Fn::Cosh;
    if (c == "tanh") return Fn::Tanh;
    if (c == "ln") return Fn::Ln;
    if (c == "exp") return Fn::Exp;
    return Fn::None;
  }
  static bool is_greek(std::string_view c) {
    static constexpr std::string_view kGreek[] = {
        "\\alpha", "\\beta", "\\gamma", "\\delta", "\\epsilon", "\\varepsilon", "\\zeta", "\\eta", "\\theta",
        "\\vartheta", "\\iota", "\\kappa", "\\lambda", "\\mu", "\\nu", "\\xi", "\\rho", "\\sigma", "\\tau",
        "\\upsilon", "\\phi", "\\varphi", "\\chi", "\\psi", "\\omega", "\\Gamma", "\\Delta", "\\Theta",
        "\\Lambda", "\\Xi", "\\Sigma", "\\Phi", "\\Psi", "\\Omega"};
    for (auto g : kGreek)
      if (c == g) return true;
    return false;
  }

  bool starts_atom() {
    char c = peek();
    if (c == '\0') return false;
    if (is_digit(c) || is_alpha(c) || c == '(' || c == '[' || c == '{') return true;
    if (c == '.') return i + 1 < s.size() && is_digit(s[i + 1]);
    if (c == '|') return abs_depth == 0;
    if (c == '\\') {
      std::string_view cmd = peek_command();
      return cmd == "\\frac" || cmd == "\\sqrt" || cmd == "\\binom" || cmd == "\\dbinom" || cmd == "\\tbinom" ||
             cmd == "\\pi" || cmd == "\\infty" || is_greek(cmd) || is_function_command(cmd);
    }
    return false;
  }

  int parse_power() {
    if (++depth > kMaxDepth) return fail();
    int base = parse_postfix();
    skip_spaces();
    if (!failed && (peek() == '^' || (peek() == '*' && i + 1 < s.size() && s[i + 1] == '*'))) {
      i += s[i] == '^' ? 1 : 2;
      int e = parse_exponent();
      base = node(Op::Pow, base, e);
      while (!failed && peek() == '!') {
        ++i;
        base = node(Op::Fact, base);
      }
    }
    --depth;
    return base;
  }

  // Exponent: a braced group, a whole number (`2^10` is 1024, as plain text means), or a signed atom.
  int parse_exponent() {
    if (++depth > kMaxDepth) return fail();
    int r;
    char c = peek();
    if (c == '{') {
      ++i;
      r = parse_expr();
      if (!eat('}')) r = fail();
    } else if (c == '-') {
      ++i;
      r = node(Op::Neg, parse_exponent());
    } else if (c == '+') {
      ++i;
      r = parse_exponent();
    } else if (is_digit(c)) {
      r = parse_number();
    } else {
      r = parse_power();
    }
    --depth;
    return r;
  }

  int parse_postfix() {
    int a = parse_atom();
    while (!failed && peek() == '!') {
      ++i;
      a = node(Op::Fact, a);
    }
    return a;
  }

  int parse_number() {
    std::size_t start = i;
    while (i < s.size() && is_digit(s[i])) ++i;
    bool decimal = false;
    if (i < s.size() && s[i] == '.' && i + 1 < s.size() && is_digit(s[i + 1])) {
      decimal = true;
      ++i;
      while (i < s.size() && is_digit(s[i])) ++i;
    }
    std::string_view digits = s.substr(start, i - start);
    if (digits.empty()) return fail();
    // Repeating decimal: 0.\overline{3}, 0.1\overline{6} (exact: the repetend over 10^k - 1).
    {
      std::size_t j = i;
      if (!decimal && j < s.size() && s[j] == '.') ++j;
      if (s.compare(j, 10, "\\overline{") == 0) {
        std::size_t close = s.find('}', j);
        std::string_view rep = s.substr(j + 10, close == std::string_view::npos ? 0 : close - j - 10);
        bool ok = !rep.empty() && rep.size() <= 18 &&
                  std::all_of(rep.begin(), rep.end(), [](char ch) { return is_digit(ch); });
        std::string plain(digits);
        if (!decimal) plain.push_back('.');
        auto base = ok ? parse_decimal(plain) : std::nullopt;
        std::size_t frac_digits = plain.size() - plain.find('.') - 1;
        auto scale = pow_int(Rational::integer(10), static_cast<i128>(frac_digits));
        auto nines = pow_int(Rational::integer(10), static_cast<i128>(rep.size()));
        auto repv = ok ? parse_decimal(rep) : std::nullopt;
        if (base && scale && nines && repv) {
          auto tail = *repv / Rational::integer(nines->num - 1);
          auto tail_scaled = tail ? *tail / *scale : std::nullopt;
          auto q = tail_scaled ? *base + *tail_scaled : std::nullopt;
          if (q && static_cast<int>(out.nodes.size()) < kMaxNodes && !failed) {
            i = close + 1;
            return out.number(*q);
          }
        }
        return fail();
      }
    }
    // Scientific notation: 1.5e10, 3e-4 (but `2e` alone is 2 times e).
    long exp10 = 0;
    bool sci = false;
    if (i + 1 < s.size() && (s[i] == 'e' || s[i] == 'E')) {
      std::size_t k = i + 1;
      bool neg = false;
      if (k < s.size() && (s[k] == '-' || s[k] == '+')) neg = s[k++] == '-';
      if (k < s.size() && is_digit(s[k])) {
        std::size_t e0 = k;
        while (k < s.size() && is_digit(s[k]) && k - e0 < 6) ++k;
        if (k < s.size() && is_digit(s[k])) return fail();  // absurd exponent
        exp10 = std::strtol(std::string(s.substr(e0, k - e0)).c_str(), nullptr, 10);
        if (neg) exp10 = -exp10;
        sci = true;
        i = k;
      }
    }
    Node n;
    n.op = Op::Num;
    n.q = Exact::from_decimal(digits);
    if (digits.size() > 400) {
      n.value = HUGE_VAL;
    } else {
      n.value = 0;  // from_chars: locale-independent (strtod would read "3.5" as 3 under a de_DE locale)
      std::from_chars(digits.data(), digits.data() + digits.size(), n.value);
    }
    if (decimal) out.approx = true;
    if (sci) {
      n.value *= std::pow(10.0, static_cast<double>(exp10));
      n.q = n.q * Exact::integer(10).pow(Exact::integer(exp10));
    }
    if (failed || static_cast<int>(out.nodes.size()) >= kMaxNodes) return fail();
    return out.add(std::move(n));
  }

  // A braced argument `{...}` or a single token (`\frac12`, `\sqrt x`).
  int parse_group() {
    if (++depth > kMaxDepth) return fail();
    int r;
    char c = peek();
    if (c == '{') {
      ++i;
      r = parse_expr();
      if (!eat('}')) r = fail();
    } else if (is_digit(c)) {
      // one digit only, as LaTeX reads \frac12
      Node n;
      n.op = Op::Num;
      n.q = Rational::integer(c - '0');
      n.value = c - '0';
      ++i;
      r = static_cast<int>(out.nodes.size()) >= kMaxNodes ? fail() : out.add(std::move(n));
    } else {
      r = parse_atom();
    }
    --depth;
    return r;
  }

  int variable(std::string_view name) {
    if (vars.names.size() >= kMaxVariables && vars.index(name) >= kMaxVariables) return fail();
    Node n;
    n.op = Op::Var;
    n.var = vars.index(name);
    out.has_vars = true;
    if (failed || static_cast<int>(out.nodes.size()) >= kMaxNodes) return fail();
    return out.add(std::move(n));
  }

  // Reads `_x` / `_{...}` after a name and appends it to the name.
  std::string subscripted(std::string name) {
    if (i < s.size() && s[i] == '_') {
      if (i + 1 < s.size() && s[i + 1] == '{') {
        std::size_t close = match_brace(s, i + 1);
        if (close == std::string_view::npos) {
          fail();
          return name;
        }
        name.append(s.substr(i, close + 1 - i));
        i = close + 1;
      } else if (i + 1 < s.size() && (is_alpha(s[i + 1]) || is_digit(s[i + 1]))) {
        name.append(s.substr(i, 2));
        i += 2;
      } else {
        fail();
      }
    }
    return name;
  }

  int parse_function(Fn fn, bool is_log) {
    int base = -1;
    if (is_log && peek() == '_') {
      ++i;
      base = parse_group();
    }
    int power = -1;
    bool inverse = false;
    if (peek() == '^') {
      ++i;
      power = parse_exponent();
      if (power >= 0 && out.nodes[power].op == Op::Neg && out.nodes[out.nodes[power].a].op == Op::Num &&
          out.nodes[out.nodes[power].a].q == Exact::integer(1)) {
        inverse = true;
        power = -1;
      }
    }
    if (inverse) {
      switch (fn) {
        case Fn::Sin: fn = Fn::Asin; break;
        case Fn::Cos: fn = Fn::Acos; break;
        case Fn::Tan: fn = Fn::Atan; break;
        default: return fail();
      }
    }
    int arg;
    if (peek() == '(' || peek() == '{' || peek() == '[') {
      arg = parse_atom();
    } else {
      // `\sin 2x` is sin(2x): a run of numbers and letters, not crossing another command.
      arg = parse_power();
      while (!failed && i < s.size()) {
        bool more = is_digit(s[i]) || is_alpha(s[i]);
        if (s[i] == '\\') {
          std::string_view cmd = s.substr(i, command_length(s, i));
          more = cmd == "\\pi" || is_greek(cmd);
        }
        if (!more) break;
        arg = node(Op::Mul, arg, parse_power());
      }
    }
    int r;
    if (is_log) {
      if (base < 0) {
        Node n;
        n.op = Op::Func;
        n.fn = Fn::Ln;
        n.a = arg;
        r = (failed || arg < 0) ? fail() : out.add(std::move(n));
      } else {
        r = node(Op::Log, arg, base);
      }
    } else {
      Node n;
      n.op = Op::Func;
      n.fn = fn;
      n.a = arg;
      r = (failed || arg < 0) ? fail() : out.add(std::move(n));
    }
    if (power >= 0) r = node(Op::Pow, r, power);
    return r;
  }

  int parse_atom() {
    if (++depth > kMaxDepth) return fail();
    int r = parse_atom_inner();
    --depth;
    return r;
  }

  int parse_atom_inner() {
    if (failed) return -1;
    char c = peek();
    if (c == '\0') return fail();
    if (is_digit(c) || c == '.') return parse_number();
    if (c == '(' || c == '[' || c == '{') {
      char close = c == '(' ? ')' : c == '[' ? ']' : '}';
      ++i;
      int saved_abs = abs_depth;
      abs_depth = 0;
      int r = parse_expr();
      abs_depth = saved_abs;
      if (!eat(close)) return fail();
      return r;
    }
    if (c == '|') {
      ++i;
      ++abs_depth;
      int r = parse_expr();
      --abs_depth;
      if (!eat('|')) return fail();
      return node(Op::Abs, r);
    }
    if (is_alpha(c)) {
      std::size_t j = i;
      while (j < s.size() && is_alpha(s[j])) ++j;
      std::string_view run = s.substr(i, j - i);
      // Plain-text function names.
      for (std::string_view name : {"sqrt", "sin", "cos", "tan", "ln", "log", "exp"}) {
        if (run.substr(0, name.size()) == name && (run.size() == name.size() || name == "sqrt")) {
          i += name.size();
          if (name == "sqrt") {
            int a = parse_atom();
            return node(Op::Sqrt, a);
          }
          return parse_function(fn_of(name), name == "log");
        }
      }
      if (run == "pi") {
        i += 2;
        return node(Op::Pi);
      }
      if (run.size() >= 4) return fail();  // a word: the answer is text, not a product of letters
      ++i;
      if (c == 'e' && !(i < s.size() && s[i] == '_')) return node(Op::E);
      if (c == 'i' && !(i < s.size() && s[i] == '_')) return node(Op::I);
      std::string name = subscripted(std::string(1, c));
      if (failed) return -1;
      return variable(name);
    }
    if (c == '\\') {
      std::string_view cmd = peek_command();
      i += cmd.size();
      if (cmd == "\\frac") {
        int a = parse_group();
        int b = parse_group();
        return node(Op::Div, a, b);
      }
      if (cmd == "\\binom" || cmd == "\\dbinom" || cmd == "\\tbinom") {
        int a = parse_group();
        int b = parse_group();
        return node(Op::Binom, a, b);
      }
      if (cmd == "\\sqrt") {
        if (peek() == '[') {
          ++i;
          int n = parse_expr();
          if (!eat(']')) return fail();
          int a = parse_group();
          return node(Op::Root, a, n);
        }
        return node(Op::Sqrt, parse_group());
      }
      if (cmd == "\\pi") return node(Op::Pi);
      if (cmd == "\\infty") return node(Op::Inf);
      if (cmd == "\\log" || cmd == "\\lg") return parse_function(Fn::Ln, true);
      Fn fn = fn_of(cmd);
      if (fn != Fn::None) return parse_function(fn, false);
      if (is_greek(cmd)) {
        std::string name = subscripted(std::string(cmd));
        if (failed) return -1;
        return variable(name);
      }
      return fail();
    }
    return fail();
  }
};

}  // namespace detail

/// Parses `text` (already normalised) into `out`; `pm_sign` picks the branch of `\pm`.
/// Returns false when the text is not a supported expression. `saw_pm` reports a `\pm`.
inline bool parse_expression(std::string_view text, Expr& out, VarTable& vars, int pm_sign = 1,
                             bool* saw_pm = nullptr) {
  out = Expr{};
  if (text.empty() || text.size() > 2 * kMaxNormalizeChars) return false;
  detail::Parser p(text, out, vars);
  p.pm_sign = pm_sign;
  p.parse();
  if (saw_pm) *saw_pm = p.saw_pm;
  return !p.failed && out.root >= 0;
}

/// Work allowed to one exact evaluation beyond 128 bits, in limb operations (a product of two
/// n-limb numbers costs about n^2, a reduction to lowest terms about 24 n^2): about ten
/// milliseconds at most. A node past it is TooLarge, so the grader answers Unknown.
inline constexpr std::size_t kExactWorkBudget = std::size_t{1} << 23;

namespace detail {
/// Estimated limb operations of node `n` on values a and b (0 while everything is 128-bit).
inline std::size_t exact_cost(const Node& n, const Exact& a, const Exact& b) {
  auto square = [](std::size_t limbs) { return limbs * limbs; };
  switch (n.op) {
    case Op::Pow: {  // the result has about bits(a) * |b| bits
      const Rational* e = b.small();
      if (!e || !a.has_value()) return 0;
      std::size_t bits = a.bit_size() * static_cast<std::size_t>(std::min<i128>(e->num < 0 ? -e->num : e->num, kMaxExactBits));
      return bits > 256 ? square(bits / 32) : 0;
    }
    case Op::Fact:
    case Op::Binom: {  // k steps on a number of up to `bits` bits
      const Rational* k = (n.op == Op::Fact ? a : b).small();
      if (!k || k->num < 34) return 0;
      auto kk = static_cast<std::size_t>(std::min<i128>(k->num, kMaxExactFactorial));
      std::size_t bits = n.op == Op::Fact ? kk * 12 : kk * a.bit_size();  // log2 n! <= 12 n here
      // Measured: about kk / 2 passes over the final size for n!, 4 kk for C(n, k).
      return n.op == Op::Fact ? kk * (bits / 32 + 1) / 2 : kk * (bits / 32 + 1) * 4;
    }
    case Op::Sqrt: return 8 * square(a.limb_count());  // a few divisions
    default: {
      std::size_t limbs = a.limb_count() + b.limb_count();
      if (limbs == 0) return 0;
      bool integers = a.is_integer() && (n.b < 0 || b.is_integer());
      if (integers && n.op != Op::Div)  // sums are linear, products quadratic; no gcd
        return n.op == Op::Mul ? (a.limb_count() + 1) * (b.limb_count() + 1) : limbs;
      return 24 * square(limbs + 1);  // a reduction to lowest terms
    }
  }
}
}  // namespace detail

/// Exact value of every node on lane `lane` (NotRational where not rational, TooLarge past the
/// size caps or the work budget). Returns the root's. `shared_budget` (limb operations left) bounds
/// several evaluations together; without it this one gets kExactWorkBudget.
inline Exact eval_exact(const Expr& e, int lane, std::vector<Exact>& v, std::size_t* shared_budget = nullptr) {
  v.assign(e.nodes.size(), Exact{});
  std::size_t own_budget = kExactWorkBudget;
  std::size_t& budget = shared_budget ? *shared_budget : own_budget;
  const Exact none;
  for (std::size_t k = 0; k < e.nodes.size(); ++k) {
    const Node& n = e.nodes[k];
    const Exact& a = n.a >= 0 ? v[n.a] : none;
    const Exact& b = n.b >= 0 ? v[n.b] : none;
    std::size_t cost = detail::exact_cost(n, a, b);
    if (cost > budget) {
      v[k] = Exact::too_large();
      continue;
    }
    budget -= cost;
    Exact r;
    switch (n.op) {
      case Op::Num: r = n.q; break;
      case Op::Var: r = variable_value(n.var, lane); break;
      case Op::Add: r = a + b; break;
      case Op::Sub: r = a - b; break;
      case Op::Mul: r = a * b; break;
      case Op::Div: r = a / b; break;
      case Op::Neg: r = -a; break;
      case Op::Pow:
        if (b.small() && b.small()->den == 2) {
          r = a.sqrt().pow(b * Exact::integer(2));  // x^{3/2}: exact when x is a square
        } else {
          r = a.pow(b);
        }
        break;
      case Op::Sqrt: r = a.sqrt(); break;
      case Op::Abs: r = a.abs(); break;
      case Op::Fact: r = a.factorial(); break;
      case Op::Binom: r = Exact::binomial(a, b); break;
      case Op::Pi:
      case Op::E:
      case Op::I:
      case Op::Inf: break;
      default:  // irrational functions; a TooLarge argument stays TooLarge
        if (a.is_too_large() || b.is_too_large()) r = Exact::too_large();
        break;
    }
    v[k] = std::move(r);
  }
  return e.root >= 0 ? v[e.root] : Exact{};
}

namespace detail {
inline double gamma_real(double x) { return std::tgamma(x); }
inline cplx ipow(cplx base, int e) {  // exact-as-possible integer power by squaring
  bool neg = e < 0;
  unsigned u = static_cast<unsigned>(neg ? -e : e);
  cplx r(1, 0);
  while (u) {
    if (u & 1u) r *= base;
    u >>= 1;
    if (u) base *= base;
  }
  return neg ? cplx(1, 0) / r : r;
}
inline cplx real_root(cplx a, double n) {  // odd roots of negative reals stay real
  double nr = std::round(n);
  if (std::abs(a.imag()) <= 1e-300 && a.real() < 0 && nr == n && std::fmod(std::abs(nr), 2.0) == 1.0)
    return cplx(-std::pow(-a.real(), 1.0 / n), 0.0);
  return std::pow(a, 1.0 / n);
}
}  // namespace detail

/// Numeric value of the expression on every lane (complex, principal branches). `exact` holds the
/// exact values per lane (from eval_exact) and is used for exponents such as 1/3 of negatives.
inline Lanes eval_numeric(const Expr& e, std::vector<Lanes>& v,
                          const std::array<std::vector<Exact>, kPoints>* exact = nullptr) {
  const double inf = HUGE_VAL;
  const double pi = 3.14159265358979323846;
  v.resize(e.nodes.size());
  for (std::size_t k = 0; k < e.nodes.size(); ++k) {
    const Node& n = e.nodes[k];
    Lanes r;
    switch (n.op) {
      case Op::Num: r.setConstant(cplx(n.value, 0)); break;
      case Op::Var:
        for (int l = 0; l < kPoints; ++l) r(l) = cplx(variable_value(n.var, l).to_double(), 0);
        break;
      case Op::Pi: r.setConstant(cplx(pi, 0)); break;
      case Op::E: r.setConstant(cplx(std::exp(1.0), 0)); break;
      case Op::I: r.setConstant(cplx(0, 1)); break;
      case Op::Inf: r.setConstant(cplx(inf, 0)); break;
      case Op::Add: r = v[n.a] + v[n.b]; break;
      case Op::Sub: r = v[n.a] - v[n.b]; break;
      case Op::Mul: r = v[n.a] * v[n.b]; break;
      case Op::Div: r = v[n.a] / v[n.b]; break;
      case Op::Neg: r = Lanes::Zero() - v[n.a]; break;  // 0 - z keeps +0 imaginary parts (branch cuts)
      case Op::Pow:
        for (int l = 0; l < kPoints; ++l) {
          cplx base = v[n.a](l), ex = v[n.b](l);
          const Rational* q = exact ? (*exact)[l][n.b].small() : nullptr;
          if (q && q->den == 1 && q->num >= -1024 && q->num <= 1024) {
            r(l) = detail::ipow(base, static_cast<int>(q->num));
          } else if (q && (q->den % 2 == 1) && std::abs(base.imag()) <= 1e-300 && base.real() < 0) {
            double mag = std::pow(-base.real(), q->to_double());
            bool odd_num = (q->num % 2) != 0;
            r(l) = cplx(odd_num ? -mag : mag, 0);
          } else if (base == cplx(0, 0)) {
            r(l) = ex.real() > 0 ? cplx(0, 0) : cplx(inf, 0);
          } else {
            r(l) = std::pow(base, ex);
          }
        }
        break;
      case Op::Sqrt: r = v[n.a].sqrt(); break;
      case Op::Root:
        for (int l = 0; l < kPoints; ++l) {
          cplx idx = v[n.b](l);
          r(l) = idx.imag() == 0 && idx.real() != 0 ? detail::real_root(v[n.a](l), idx.real())
                                                    : cplx(std::nan(""), 0);
        }
        break;
      case Op::Abs: r = v[n.a].abs().cast<cplx>(); break;
      case Op::Fact:
        for (int l = 0; l < kPoints; ++l) {
          cplx a = v[n.a](l);
          r(l) = a.imag() == 0 ? cplx(detail::gamma_real(a.real() + 1), 0) : cplx(std::nan(""), 0);
        }
        break;
      case Op::Binom:
        for (int l = 0; l < kPoints; ++l) {
          cplx a = v[n.a](l), b = v[n.b](l);
          if (a.imag() != 0 || b.imag() != 0) {
            r(l) = cplx(std::nan(""), 0);
          } else {
            double x = a.real(), y = b.real();
            if (y == std::round(y) && y >= 0 && y <= 64) {  // falling factorial: valid for any x
              double acc = 1;
              for (int j = 1; j <= static_cast<int>(y); ++j) acc = acc * (x - y + j) / j;
              r(l) = cplx(acc, 0);
            } else {
              r(l) = cplx(std::tgamma(x + 1) / (std::tgamma(y + 1) * std::tgamma(x - y + 1)), 0);
            }
          }
        }
        break;
      case Op::Log:
        for (int l = 0; l < kPoints; ++l) r(l) = std::log(v[n.a](l)) / std::log(v[n.b](l));
        break;
      case Op::Func: {
        const Lanes& a = v[n.a];
        switch (n.fn) {
          case Fn::Sin: r = a.sin(); break;
          case Fn::Cos: r = a.cos(); break;
          case Fn::Tan: r = a.tan(); break;
          case Fn::Cot: r = a.cos() / a.sin(); break;
          case Fn::Sec: r = cplx(1, 0) / a.cos(); break;
          case Fn::Csc: r = cplx(1, 0) / a.sin(); break;
          case Fn::Asin: for (int l = 0; l < kPoints; ++l) r(l) = std::asin(a(l)); break;
          case Fn::Acos: for (int l = 0; l < kPoints; ++l) r(l) = std::acos(a(l)); break;
          case Fn::Atan: for (int l = 0; l < kPoints; ++l) r(l) = std::atan(a(l)); break;
          case Fn::Sinh: for (int l = 0; l < kPoints; ++l) r(l) = std::sinh(a(l)); break;
          case Fn::Cosh: for (int l = 0; l < kPoints; ++l) r(l) = std::cosh(a(l)); break;
          case Fn::Tanh: for (int l = 0; l < kPoints; ++l) r(l) = std::tanh(a(l)); break;
          case Fn::Ln: r = a.log(); break;
          case Fn::Exp: r = a.exp(); break;
          case Fn::None: r.setConstant(cplx(std::nan(""), 0)); break;
        }
        break;
      }
    }
    v[k] = r;
  }
  return e.root >= 0 ? v[e.root] : Lanes::Constant(cplx(std::nan(""), 0));
}

using RealLanes = Eigen::Array<double, kPoints, 1>;

/// A bound on the magnitude of the terms that produced each lane's value (|a| + |b| for a sum,
/// products of bounds for products, ...): floating-point rounding leaves an absolute error of
/// about 1e-16 times it, so a value below ~1e-12 of its bound is zero up to rounding
/// (sin(pi), e^{i pi} + 1), while pi / 2^99 is not (its bound is itself). `v` holds
/// eval_numeric's node values.
inline RealLanes eval_magnitude(const Expr& e, const std::vector<Lanes>& v, std::vector<RealLanes>& m) {
  m.resize(e.nodes.size());
  for (std::size_t k = 0; k < e.nodes.size(); ++k) {
    const Node& n = e.nodes[k];
    RealLanes self = v[k].abs();
    RealLanes r;
    switch (n.op) {
      case Op::Add:
      case Op::Sub: r = m[n.a] + m[n.b]; break;
      case Op::Mul: r = m[n.a] * m[n.b]; break;
      case Op::Div: r = m[n.a] / v[n.b].abs(); break;
      case Op::Neg:
      case Op::Abs: r = m[n.a]; break;
      case Op::Sqrt: r = m[n.a].sqrt(); break;
      case Op::Pow:
        for (int l = 0; l < kPoints; ++l) {
          double ex = v[n.b](l).real();
          r(l) = ex > 0 ? std::max(self(l), std::pow(m[n.a](l), ex)) : self(l);
        }
        break;
      case Op::Func:
        if (n.fn == Fn::Exp) {
          r = self * (1.0 + m[n.a]);
        } else if (n.fn == Fn::Ln) {
          r = self.max(m[n.a] / v[n.a].abs());
        } else {
          r = self.max(m[n.a]);
        }
        break;
      case Op::Log: r = self.max(m[n.a] / v[n.a].abs()); break;
      default: r = self; break;
    }
    m[k] = r.max(self);
  }
  return e.root >= 0 ? m[e.root] : RealLanes::Zero();
}

}  // namespace genprm::math
