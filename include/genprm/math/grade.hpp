#pragma once
// Answer equivalence: compare(prediction, reference) -> Equal / NotEqual / Unknown.
//
// Pipeline: normalise both (normalize.hpp); equal strings (also case-insensitively) -> Equal;
// a multiple-choice reference (A-E) -> compare letters; else parse each side into a structure
// (matrix, union of intervals, bare list, set, tuple/interval, relation, expression, text) and
// compare structurally (README.md lists the rules). Scalars: exact rational arithmetic of any
// size up to the caps of exact.hpp when both sides are rational at the evaluation points
// (integers, fractions, powers, factorials, perfect-square roots), else complex numeric
// evaluation on kPoints lanes with relative tolerance 1e-9, or 1e-4 when a side was written
// with a decimal point (a rounded value). A `%` on one side only also tries value/100.
//
// Unknown (is_equiv() treats it as not equal) is returned when:
//   * either side fails to parse as mathematics and the strings differ (unsupported commands,
//     chains that are not an interval of one variable, malformed braces);
//   * a constant is beyond the exact caps (32768 bits, 3000!, the work budget): never Equal;
//   * an answer is longer than kMaxParseChars after normalisation and the strings differ;
//   * numeric evaluation is not finite on enough lanes (division by zero everywhere, overflow);
//   * expressions with variables agree where every variable is positive but differ elsewhere
//     (`\ln x^2` vs `2\ln x`, `\sqrt{x^2}` vs `x`): equal only on a restricted domain;
//   * a set has over kMaxItems elements, or an element comparison in a set was Unknown.
// Everything else is decided. The cost is bounded by the caps on length, nodes and items.
#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/LU>

#include "genprm/math/expr.hpp"
#include "genprm/math/normalize.hpp"

namespace genprm::math {

enum class Verdict { Equal, NotEqual, Unknown };

inline constexpr std::size_t kMaxParseChars = 2048;
inline constexpr std::size_t kMaxItems = 64;

inline const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::Equal: return "equal";
    case Verdict::NotEqual: return "not_equal";
    default: return "unknown";
  }
}

namespace detail {

struct Answer {
  enum class Kind { Expr, Rel, Seq, Matrix, Det, Text, Unparsed };
  Kind kind = Kind::Unparsed;
  char open = 0, close = 0;    // Seq: '(' ')', '[' ']', '{' '}' (set), 0 (bare list), 'U' (union)
  std::vector<Answer> items;   // Seq items; Matrix entries row-major; Rel: {lhs, rhs}
  int rows = 0, cols = 0;      // Matrix, Det (a `vmatrix`: its determinant is the answer)
  std::string rel;             // Rel: "=", "<", "\\le", "\\ne" (> and \ge are swapped into these)
  Expr expr;                   // Expr
  std::string text;            // the source text (all kinds)

  bool unordered() const { return kind == Kind::Seq && (open == '{' || open == 0 || open == 'U'); }
};

inline bool is_opener(char c) { return c == '(' || c == '[' || c == '{'; }
inline bool is_closer(char c) { return c == ')' || c == ']' || c == '}'; }

/// Splits at depth-0 positions where `at(s, i)` returns the separator length (0: no split).
template <class F>
std::vector<std::string_view> split_top(std::string_view s, F at) {
  std::vector<std::string_view> parts;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size();) {
    char c = s[i];
    if (is_opener(c)) ++depth;
    if (is_closer(c)) --depth;
    if (depth == 0) {
      std::size_t len = at(s, i);
      if (len > 0) {
        parts.push_back(s.substr(start, i - start));
        i += len;
        start = i;
        continue;
      }
    }
    ++i;
  }
  parts.push_back(s.substr(start));
  return parts;
}

/// Index of the bracket closing the one at s[0] (any bracket kind: intervals mix them).
inline std::size_t match_any_bracket(std::string_view s) {
  int depth = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (is_opener(s[i])) ++depth;
    if (is_closer(s[i]) && --depth == 0) return i;
  }
  return std::string_view::npos;
}

inline bool has_word(std::string_view s) {
  int run = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (is_alpha(s[i])) {
      if (run == 0 && i > 0 && s[i - 1] == '\\') {  // a command name: skip it
        while (i < s.size() && is_alpha(s[i])) ++i;
        --i;
        continue;
      }
      if (++run >= 4) return true;
    } else {
      run = 0;
    }
  }
  return false;
}

/// Words, where letter case does not matter: a run of 4+ letters, or yes/no/odd/even/true/false/none.
inline bool is_wordy(std::string_view s) {
  if (has_word(s)) return true;
  std::string l = lower(s);
  for (std::string_view w : {"yes", "no", "odd", "even", "true", "false", "none", "all"})
    if (l == w) return true;
  return false;
}

inline Answer parse_answer(std::string_view s, VarTable& vars, int depth = 0);

inline Answer make_seq(char open, char close, const std::vector<std::string_view>& parts, VarTable& vars,
                       int depth) {
  Answer a;
  a.kind = Answer::Kind::Seq;
  a.open = open;
  a.close = close;
  if (parts.size() > kMaxItems) {
    a.kind = Answer::Kind::Unparsed;
    return a;
  }
  for (auto p : parts) a.items.push_back(parse_answer(trim(p), vars, depth + 1));
  return a;
}

inline Answer parse_matrix(std::string_view s, VarTable& vars, int depth) {
  Answer a;
  a.text = std::string(s);
  std::size_t close = s.find('}');
  std::string_view env = s.substr(7, close - 7);
  std::string end = "\\end{" + std::string(env) + "}";
  const bool det = env == "vmatrix";
  if (!(env == "pmatrix" || env == "bmatrix" || env == "matrix" || env == "Bmatrix" || env == "smallmatrix" ||
        env == "array" || det) ||
      !ends_with(s, end))
    return a;  // Unparsed (unknown environments)
  std::string_view body = s.substr(close + 1, s.size() - end.size() - close - 1);
  if (env == "array" && !body.empty() && body[0] == '{') {
    std::size_t spec = body.find('}');
    if (spec == std::string_view::npos) return a;
    body = body.substr(spec + 1);
  }
  auto rows = split_top(body, [](std::string_view t, std::size_t i) -> std::size_t {
    return (t[i] == '\\' && i + 1 < t.size() && t[i + 1] == '\\') ? 2 : 0;
  });
  while (!rows.empty() && trim(rows.back()).empty()) rows.pop_back();
  if (rows.empty() || rows.size() > kMaxItems) return a;
  Answer m;
  m.kind = Answer::Kind::Matrix;
  m.text = a.text;
  m.rows = static_cast<int>(rows.size());
  for (auto row : rows) {
    auto cells = split_top(row, [](std::string_view t, std::size_t i) -> std::size_t { return t[i] == '&' ? 1 : 0; });
    if (m.cols == 0) m.cols = static_cast<int>(cells.size());
    if (static_cast<int>(cells.size()) != m.cols || m.items.size() + cells.size() > kMaxItems) return a;
    for (auto c : cells) m.items.push_back(parse_answer(trim(c), vars, depth + 1));
  }
  if (det) {
    if (m.rows != m.cols || m.rows > 8) return a;
    for (const Answer& it : m.items)
      if (it.kind != Answer::Kind::Expr) return a;
    m.kind = Answer::Kind::Det;
  }
  return m;
}

/// Relation operator at s[i] (length, and its canonical name), depth-0 only.
inline std::size_t relation_at(std::string_view s, std::size_t i, std::string* name) {
  char c = s[i];
  if (c == '=' || c == '<' || c == '>') {
    std::size_t len = 1;
    std::string n(1, c);
    if (i + 1 < s.size() && s[i + 1] == '=' && c != '=') {
      len = 2;
      n = c == '<' ? "\\le" : "\\ge";
    }
    if (name) *name = n;
    return len;
  }
  if (c == '\\') {
    std::size_t len = command_length(s, i);
    std::string_view cmd = s.substr(i, len);
    for (std::string_view r : {"\\le", "\\ge", "\\ne", "\\lt", "\\gt"}) {
      if (cmd == r) {
        if (name) *name = cmd == "\\lt" ? "<" : cmd == "\\gt" ? ">" : std::string(cmd);
        return len;
      }
    }
  }
  return 0;
}

inline bool is_single_var(const Expr& e) { return e.root >= 0 && e.nodes[e.root].op == Op::Var; }

inline Answer constant_answer(Expr e, std::string text) {
  Answer a;
  a.kind = Answer::Kind::Expr;
  a.expr = std::move(e);
  a.text = std::move(text);
  return a;
}

/// +infinity or -infinity as an interval end.
inline Answer infinity_answer(int sign) {
  Expr e;
  e.root = e.add(Op::Inf);
  if (sign < 0) e.root = e.add(Op::Neg, e.root);
  return constant_answer(std::move(e), sign < 0 ? "-\\infty" : "\\infty");
}

inline Answer interval_answer(char open, Answer low, Answer high, char close) {
  Answer a;
  a.kind = Answer::Kind::Seq;
  a.open = open;
  a.close = close;
  a.items.push_back(std::move(low));
  a.items.push_back(std::move(high));
  return a;
}

/// The real line without the points `cut` (sorted): (-inf, c1) U (c1, c2) U ... U (cn, inf).
inline Answer real_line_without(std::vector<Answer> cut) {
  if (cut.empty()) return interval_answer('(', infinity_answer(-1), infinity_answer(1), ')');
  Answer u;
  u.kind = Answer::Kind::Seq;
  u.open = u.close = 'U';
  Answer low = infinity_answer(-1);
  for (Answer& c : cut) {
    u.items.push_back(interval_answer('(', std::move(low), c, ')'));
    low = std::move(c);
  }
  u.items.push_back(interval_answer('(', std::move(low), infinity_answer(1), ')'));
  return u;
}

/// The value of a constant real expression (nullopt with variables or a complex, non-finite value).
inline std::optional<double> real_value(const Expr& e) {
  if (e.has_vars) return std::nullopt;
  std::vector<Lanes> buf;
  cplx z = eval_numeric(e, buf)(0);
  if (!std::isfinite(z.real()) || std::abs(z.imag()) > 1e-12 * std::max(1.0, std::abs(z.real()))) return std::nullopt;
  return z.real();
}

/// `\mathbb{R}` and `\mathbb{R} \setminus \{0, 1\}` (also `\R`, `\Bbb R`, `-` for `\setminus`) as
/// intervals; false for anything else.
inline bool parse_real_line(std::string_view s, VarTable& vars, int depth, Answer& out) {
  std::size_t len = 0;
  for (std::string_view r : {"\\mathbb{R}", "\\mathbb R", "\\Bbb{R}", "\\Bbb R", "\\R"})
    if (starts_with(s, r) && !(s.size() > r.size() && is_alpha(s[r.size()]))) len = r.size();
  if (len == 0) return false;
  std::string_view rest = s.substr(len);
  if (rest.empty()) {
    out = real_line_without({});
    return true;
  }
  for (std::string_view minus : {"\\setminus", "\\backslash", "-"})
    if (starts_with(rest, minus)) {
      rest = rest.substr(minus.size());
      break;
    }
  if (!(starts_with(rest, "\\{") && ends_with(rest, "\\}"))) return false;
  Answer set = parse_answer(rest, vars, depth + 1);
  if (set.kind != Answer::Kind::Seq || set.open != '{') return false;
  std::vector<std::pair<double, Answer>> points;
  for (Answer& it : set.items) {
    auto v = it.kind == Answer::Kind::Expr ? real_value(it.expr) : std::nullopt;
    if (!v) return false;
    points.emplace_back(*v, std::move(it));
  }
  std::sort(points.begin(), points.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<Answer> cut;
  for (auto& pt : points) cut.push_back(std::move(pt.second));
  out = real_line_without(std::move(cut));
  return true;
}

/// English number words, zero to 999,999 (`eight`, `twenty-one`, `two hundred five`; spaces were
/// removed by normalisation). nullopt for anything else.
inline std::optional<int> number_word(std::string_view s) {
  static constexpr std::string_view kSmall[] = {
      "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
      "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
  static constexpr std::string_view kTens[] = {"twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"};
  if (s.size() < 3 || s.size() > 80 || !is_alpha(s[0])) return std::nullopt;
  std::string l = lower(s);
  std::string_view t = l;
  // Longest word first: "eighteen" before "eight", "seventy" before "seven".
  auto take = [&t](std::string_view w) {
    if (!starts_with(t, w)) return false;
    t.remove_prefix(w.size());
    if (!t.empty() && t[0] == '-') t.remove_prefix(1);
    return true;
  };
  auto below_hundred = [&]() -> std::optional<int> {
    for (int k = 7; k >= 0; --k)
      if (take(kTens[k])) {
        for (int u = 9; u >= 1; --u)
          if (take(kSmall[u])) return 20 + 10 * k + u;
        return 20 + 10 * k;
      }
    for (int k = 19; k >= 0; --k)
      if (take(kSmall[k])) return k;
    return std::nullopt;
  };
  auto below_thousand = [&]() -> std::optional<int> {
    auto v = below_hundred();
    if (!v || !take("hundred")) return v;
    if (*v == 0 || *v > 9) return std::nullopt;
    if (t.empty() || starts_with(t, "thousand")) return *v * 100;
    auto rest = below_hundred();
    return rest && *rest > 0 ? std::optional<int>(*v * 100 + *rest) : std::nullopt;
  };
  auto value = below_thousand();
  if (value && take("thousand")) {
    if (*value == 0) return std::nullopt;
    auto rest = t.empty() ? std::optional<int>(0) : below_thousand();
    value = rest ? std::optional<int>(*value * 1000 + *rest) : std::nullopt;
  }
  if (!t.empty()) return std::nullopt;
  return value;
}

/// `a < x < b` (also with \le, or descending with > and \ge) as the interval (a, b), `[a, b]`...
/// when the middle is one variable; Unparsed otherwise (`0 < 2x < 6`, `a < x > b`).
inline Answer parse_chained(std::string_view s, std::size_t pos, const std::string& name, std::size_t pos2,
                            const std::string& name2, VarTable& vars, int depth) {
  Answer a;
  a.text = std::string(s);
  auto ascending = [](const std::string& n) { return n == "<" || n == "\\le"; };
  auto descending = [](const std::string& n) { return n == ">" || n == "\\ge"; };
  const bool up = ascending(name) && ascending(name2);
  if (!up && !(descending(name) && descending(name2))) return a;
  std::size_t len = relation_at(s, pos, nullptr), len2 = relation_at(s, pos2, nullptr);
  Answer low = parse_answer(trim(s.substr(0, pos)), vars, depth + 1);
  Answer mid = parse_answer(trim(s.substr(pos + len, pos2 - pos - len)), vars, depth + 1);
  Answer high = parse_answer(trim(s.substr(pos2 + len2)), vars, depth + 1);
  if (low.kind != Answer::Kind::Expr || high.kind != Answer::Kind::Expr || mid.kind != Answer::Kind::Expr ||
      !is_single_var(mid.expr))
    return a;
  bool closed_low = (up ? name : name2).size() > 1, closed_high = (up ? name2 : name).size() > 1;  // \le, \ge
  if (!up) std::swap(low, high);
  Answer r = interval_answer(closed_low ? '[' : '(', std::move(low), std::move(high), closed_high ? ']' : ')');
  r.text = a.text;
  return r;
}

/// A numeral in a base (`123_4`, `1011_{2}`, `FF_{16}`): digits or capitals, with a digit, then a
/// numeric subscript. Its spelling is the answer, so it is compared as text.
inline bool is_base_numeral(std::string_view s) {
  std::size_t u = s.find('_');
  if (u == 0 || u == std::string_view::npos) return false;
  std::string_view digits = s.substr(0, u), base = s.substr(u + 1);
  if (base.size() > 2 && base.front() == '{' && base.back() == '}') base = base.substr(1, base.size() - 2);
  auto numeral = [](char c) { return is_digit(c) || (c >= 'A' && c <= 'Z'); };
  return std::all_of(digits.begin(), digits.end(), numeral) && std::any_of(digits.begin(), digits.end(), is_digit) &&
         !base.empty() && base.size() <= 2 && std::all_of(base.begin(), base.end(), is_digit);
}

inline Answer parse_answer(std::string_view s, VarTable& vars, int depth) {
  Answer a;
  a.text = std::string(s);
  if (depth > 8 || s.empty() || s.size() > kMaxParseChars) return a;
  // Matrices, also inside brackets: `\left(\begin{array}...\end{array}\right)`.
  if (starts_with(s, "\\begin{")) return parse_matrix(s, vars, depth);
  if ((s[0] == '(' || s[0] == '[') && starts_with(s.substr(1), "\\begin{") && match_any_bracket(s) == s.size() - 1) {
    Answer m = parse_matrix(s.substr(1, s.size() - 2), vars, depth);
    if (m.kind == Answer::Kind::Matrix) return m;
  }
  if (Answer line; parse_real_line(s, vars, depth, line)) {
    line.text = a.text;
    return line;
  }
  // Unions of intervals.
  {
    auto parts = split_top(s, [](std::string_view t, std::size_t i) -> std::size_t {
      if (t.compare(i, 4, "\\cup") == 0 && !(i + 4 < t.size() && is_alpha(t[i + 4]))) return 4;
      if (t[i] == 'U' && i > 0 && i + 1 < t.size() && (t[i - 1] == ')' || t[i - 1] == ']') &&
          (t[i + 1] == '(' || t[i + 1] == '['))
        return 1;
      return 0;
    });
    if (parts.size() > 1) return make_seq('U', 'U', parts, vars, depth);
  }
  // Bare comma lists: "1, 2, 3" (order-insensitive, like the solutions of an equation).
  {
    auto parts = split_top(s, [](std::string_view t, std::size_t i) -> std::size_t { return t[i] == ',' ? 1 : 0; });
    if (parts.size() > 1) return make_seq(0, 0, parts, vars, depth);
  }
  // Sets.
  if (s == "\\emptyset" || s == "\\varnothing" || s == "\\{\\}" || s == "{}") {
    a.kind = Answer::Kind::Seq;
    a.open = '{';
    a.close = '}';
    return a;
  }
  if (starts_with(s, "\\{") && ends_with(s, "\\}") && match_any_bracket(s.substr(1)) == s.size() - 2) {
    std::string_view inner = s.substr(2, s.size() - 4);
    auto parts = split_top(inner, [](std::string_view t, std::size_t i) -> std::size_t { return t[i] == ',' ? 1 : 0; });
    return make_seq('{', '}', parts, vars, depth);
  }
  // Tuples and intervals.
  if ((s[0] == '(' || s[0] == '[') && (s.back() == ')' || s.back() == ']') && match_any_bracket(s) == s.size() - 1) {
    std::string_view inner = s.substr(1, s.size() - 2);
    auto parts = split_top(inner, [](std::string_view t, std::size_t i) -> std::size_t { return t[i] == ',' ? 1 : 0; });
    if (parts.size() > 1) return make_seq(s[0], s.back(), parts, vars, depth);
  }
  // Relations.
  {
    std::size_t pos = std::string_view::npos, pos2 = std::string_view::npos;
    std::string name, name2;
    int d = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (is_opener(s[i])) ++d;
      if (is_closer(s[i])) --d;
      std::string nm;
      std::size_t len = d == 0 ? relation_at(s, i, &nm) : 0;
      if (len) {
        if (pos2 != std::string_view::npos) return a;  // three relations: Unparsed
        (pos == std::string_view::npos ? pos : pos2) = i;
        (name.empty() ? name : name2) = nm;
        i += len - 1;
      }
    }
    if (pos2 != std::string_view::npos) return parse_chained(s, pos, name, pos2, name2, vars, depth);
    if (pos != std::string_view::npos) {
      std::size_t len = relation_at(s, pos, nullptr);
      std::string_view lhs = trim(s.substr(0, pos)), rhs = trim(s.substr(pos + len));
      if (name == ">" || name == "\\ge") {
        std::swap(lhs, rhs);
        name = name == ">" ? "<" : "\\le";
      }
      if (name == "=" && !lhs.empty() && lhs[0] == '(') {  // (a, b) = (2, 3): the answer is the right side
        Answer names = parse_answer(lhs, vars, depth + 1);
        bool all_vars = names.kind == Answer::Kind::Seq && !names.items.empty();
        for (const Answer& it : names.items)
          all_vars = all_vars && it.kind == Answer::Kind::Expr && it.expr.root >= 0 &&
                     it.expr.nodes[it.expr.root].op == Op::Var;
        if (all_vars) return parse_answer(rhs, vars, depth + 1);
      }
      Answer r;
      r.kind = Answer::Kind::Rel;
      r.rel = name;
      r.text = a.text;
      r.items.push_back(parse_answer(lhs, vars, depth + 1));
      r.items.push_back(parse_answer(rhs, vars, depth + 1));
      if (r.items[0].kind != Answer::Kind::Expr || r.items[1].kind != Answer::Kind::Expr) return a;
      return r;
    }
  }
  if (is_base_numeral(s)) {
    a.kind = Answer::Kind::Text;
    return a;
  }
  if (auto n = number_word(s)) {
    Expr e;
    e.root = e.number(Exact::integer(*n));
    return constant_answer(std::move(e), a.text);
  }
  // Expressions (with \pm: the set of both branches).
  bool saw_pm = false;
  Expr e;
  if (parse_expression(s, e, vars, 1, &saw_pm)) {
    if (!saw_pm) {
      a.kind = Answer::Kind::Expr;
      a.expr = std::move(e);
      return a;
    }
    Expr minus;
    if (parse_expression(s, minus, vars, -1)) {
      Answer seq;
      seq.kind = Answer::Kind::Seq;
      seq.open = '{';
      seq.close = '}';
      seq.text = a.text;
      Answer p1, p2;
      p1.kind = p2.kind = Answer::Kind::Expr;
      p1.expr = std::move(e);
      p2.expr = std::move(minus);
      seq.items.push_back(std::move(p1));
      seq.items.push_back(std::move(p2));
      return seq;
    }
  }
  if (has_word(s)) a.kind = Answer::Kind::Text;
  return a;
}

/// Copies `b`'s nodes after `a`'s and joins the roots with `op`.
inline Expr combine(const Expr& a, const Expr& b, Op op) {
  Expr r = a;
  int offset = static_cast<int>(r.nodes.size());
  for (Node n : b.nodes) {
    if (n.a >= 0) n.a += offset;
    if (n.b >= 0) n.b += offset;
    r.nodes.push_back(std::move(n));
  }
  r.root = r.add(op, a.root, b.root + offset);
  r.approx = a.approx || b.approx;
  r.has_vars = a.has_vars || b.has_vars;
  return r;
}

inline Expr scaled_percent(const Expr& a) {
  Expr hundred;
  hundred.root = hundred.number(Rational::integer(100));
  return combine(a, hundred, Op::Div);
}

inline bool finite(cplx z) { return std::isfinite(z.real()) && std::isfinite(z.imag()); }

/// Relative closeness, or a difference below the rounding error of the computation (`bound`:
/// eval_magnitude's term bound; sin(pi) vs 0 is close, pi/2^99 vs pi/2^98 is not).
inline bool close(cplx a, cplx b, double tol, double bound = 0) {
  double diff = std::abs(a - b);
  double scale = std::max(std::abs(a), std::abs(b));
  return diff <= tol * scale || diff <= 1e-11 * bound;
}

struct Evaluated {
  std::array<std::vector<Exact>, kPoints> exact;
  std::array<Exact, kPoints> root;
  Lanes value;
  RealLanes bound = RealLanes::Zero();
  bool numeric_done = false;
};

inline void evaluate_exact(const Expr& e, int lanes, Evaluated& out) {
  std::size_t budget = kExactWorkBudget;  // shared by the lanes: bounds the cost of one side
  for (int l = 0; l < lanes; ++l) out.root[l] = eval_exact(e, l, out.exact[l], &budget);
}
inline void evaluate_numeric(const Expr& e, int lanes, Evaluated& out) {
  for (int l = lanes; l < kPoints; ++l) out.exact[l] = out.exact[0];
  std::vector<Lanes> buf;
  out.value = eval_numeric(e, buf, &out.exact);
  std::vector<RealLanes> mags;
  out.bound = eval_magnitude(e, buf, mags);
  out.numeric_done = true;
}

/// Exact values within relative tolerance `tol` (used only when a side was written as a decimal).
/// Beyond 128 bits the comparison runs on logarithms, which do not overflow.
inline bool exact_close(const Exact& a, const Exact& b, double tol) {
  if (a.small() && b.small()) return close(cplx(a.to_double(), 0), cplx(b.to_double(), 0), tol);
  Exact diff = a - b;
  if (diff.is_zero()) return true;
  return diff.has_value() && diff.log2_abs() <= std::log2(tol) + std::max(a.log2_abs(), b.log2_abs());
}

/// On how many lanes the two sides were compared, differed (of them on lanes 0-3, where every
/// variable is positive), and held a number beyond the exact caps (constants only).
struct LaneTally {
  int valid = 0, valid_pos = 0, bad = 0, bad_pos = 0, too_large = 0;
  void add(int lane, bool equal) {
    ++valid;
    valid_pos += lane < 4;
    if (!equal) {
      ++bad;
      bad_pos += lane < 4;
    }
  }
};

inline Verdict compare_expr(const Expr& p, const Expr& r) {
  int sp = 0, sr = 0;
  bool ip = p.is_inf(&sp), ir = r.is_inf(&sr);
  if (ip || ir) return (ip && ir && sp == sr) ? Verdict::Equal : Verdict::NotEqual;
  const bool vars = p.has_vars || r.has_vars;
  const int lanes = vars ? kPoints : 1;
  const double tol = (p.approx || r.approx) ? 1e-4 : 1e-9;
  Evaluated ep, er;
  evaluate_exact(p, lanes, ep);
  evaluate_exact(r, lanes, er);
  // A number too large to compute exactly is never compared in floating point. With variables
  // the lanes are sample points of an identity, so such a lane is evaluated numerically.
  auto undecidable = [&](int l) { return !vars && (ep.root[l].is_too_large() || er.root[l].is_too_large()); };
  bool numeric = false;
  for (int l = 0; l < lanes; ++l)
    numeric = numeric || (!(ep.root[l].has_value() && er.root[l].has_value()) && !undecidable(l));
  if (numeric) {
    evaluate_numeric(p, lanes, ep);
    evaluate_numeric(r, lanes, er);
  }
  LaneTally t;
  for (int l = 0; l < lanes; ++l) {
    const Exact &x = ep.root[l], &y = er.root[l];
    if (x.has_value() && y.has_value()) {
      t.add(l, x == y || (tol > 1e-9 && exact_close(x, y, tol)));
      continue;
    }
    if (undecidable(l)) {
      ++t.too_large;
      continue;
    }
    cplx a = ep.value(l), b = er.value(l);
    if (!finite(a) || !finite(b)) continue;
    t.add(l, close(a, b, tol, std::max(ep.bound(l), er.bound(l))));
  }
  if (!vars) return t.too_large || t.valid == 0 ? Verdict::Unknown : t.bad ? Verdict::NotEqual : Verdict::Equal;
  if (t.bad_pos > 0) return Verdict::NotEqual;
  if (t.valid_pos == 0) return t.bad > 0 ? Verdict::NotEqual : Verdict::Unknown;
  if (t.bad > 0) return Verdict::Unknown;  // equal only where the variables are positive
  return Verdict::Equal;
}

/// compare_proportional on exact lane values: the ratio is the same rational on every lane.
inline Verdict proportional_exact(const std::array<Exact, kPoints>& a, const std::array<Exact, kPoints>& b, double tol,
                                  bool positive) {
  Exact ratio;
  int valid = 0;
  for (int l = 0; l < kPoints; ++l) {
    if (a[l].is_zero() || b[l].is_zero()) {
      if (a[l].is_zero() && b[l].is_zero()) continue;  // both vanish here
      return Verdict::NotEqual;
    }
    Exact q = a[l] / b[l];
    if (!q.has_value()) return Verdict::Unknown;
    if (valid++ == 0) {
      ratio = q;
    } else if (!(q == ratio || (tol > 1e-9 && exact_close(q, ratio, tol)))) {
      return Verdict::NotEqual;
    }
  }
  if (valid < 2) return Verdict::Unknown;
  return positive && ratio.sign() <= 0 ? Verdict::NotEqual : Verdict::Equal;
}

/// lhs1 - rhs1 is a constant non-zero multiple of lhs2 - rhs2 (positive for inequalities).
inline Verdict compare_proportional(const Expr& f1, const Expr& f2, bool positive) {
  if (!(f1.has_vars || f2.has_vars)) return Verdict::Unknown;
  Evaluated e1, e2;
  evaluate_exact(f1, kPoints, e1);
  evaluate_exact(f2, kPoints, e2);
  const double tol = (f1.approx || f2.approx) ? 1e-4 : 1e-9;
  bool all_exact = true;
  for (int l = 0; l < kPoints; ++l) all_exact = all_exact && e1.root[l].has_value() && e2.root[l].has_value();
  if (all_exact) return proportional_exact(e1.root, e2.root, tol, positive);
  evaluate_numeric(f1, kPoints, e1);
  evaluate_numeric(f2, kPoints, e2);
  std::optional<cplx> ratio;
  int valid = 0;
  for (int l = 0; l < kPoints; ++l) {
    cplx a = e1.value(l), b = e2.value(l);
    if (!finite(a) || !finite(b)) continue;
    if (std::abs(b) < 1e-12 || std::abs(a) < 1e-12) {
      if (std::abs(b) < 1e-12 && std::abs(a) < 1e-12) continue;  // both vanish here
      return Verdict::NotEqual;
    }
    cplx q = a / b;
    ++valid;
    if (!ratio) {
      ratio = q;
    } else if (!close(*ratio, q, tol)) {
      return Verdict::NotEqual;
    }
  }
  if (valid < 2) return Verdict::Unknown;
  if (positive && !(ratio->real() > 0 && std::abs(ratio->imag()) <= 1e-9 * std::abs(*ratio))) return Verdict::NotEqual;
  return Verdict::Equal;
}

/// Numeric lanes of a scalar answer: an expression, or a determinant computed with Eigen (LU)
/// on every lane. `bound` is the rounding scale (see eval_magnitude); `approx` a decimal input.
inline bool scalar_lanes(const Answer& a, Lanes& out, RealLanes& bound, bool& approx) {
  if (a.kind == Answer::Kind::Expr) {
    Evaluated e;
    evaluate_exact(a.expr, kPoints, e);
    evaluate_numeric(a.expr, kPoints, e);
    out = e.value;
    bound = e.bound;
    approx = approx || a.expr.approx;
    return true;
  }
  if (a.kind != Answer::Kind::Det) return false;
  const int n = a.rows;
  std::vector<Lanes> entries;
  RealLanes largest = RealLanes::Zero();
  for (const Answer& it : a.items) {
    Evaluated e;
    evaluate_exact(it.expr, kPoints, e);
    evaluate_numeric(it.expr, kPoints, e);
    entries.push_back(e.value);
    largest = largest.max(e.bound);
    approx = approx || it.expr.approx;
  }
  double factorial = 1;
  for (int k = 2; k <= n; ++k) factorial *= k;
  for (int l = 0; l < kPoints; ++l) {
    Eigen::MatrixXcd m(n, n);
    for (int r = 0; r < n; ++r)
      for (int c = 0; c < n; ++c) m(r, c) = entries[static_cast<std::size_t>(r * n + c)](l);
    out(l) = m.determinant();
    bound(l) = factorial * std::pow(largest(l), n);  // sum of |products| over permutations
  }
  return true;
}

inline Verdict compare_scalar_lanes(const Answer& p, const Answer& r) {
  Lanes a, b;
  RealLanes ba, bb;
  bool approx = false;
  if (!scalar_lanes(p, a, ba, approx) || !scalar_lanes(r, b, bb, approx)) return Verdict::NotEqual;
  const double tol = approx ? 1e-4 : 1e-9;
  int valid = 0;
  for (int l = 0; l < kPoints; ++l) {
    if (!finite(a(l)) || !finite(b(l))) continue;
    ++valid;
    if (!close(a(l), b(l), tol, std::max(ba(l), bb(l)))) return Verdict::NotEqual;
  }
  return valid == 0 ? Verdict::Unknown : Verdict::Equal;
}

inline Verdict compare_answers(const Answer& p, const Answer& r);

/// The left side of `x = ...`, `f(x) = ...`, `a_1 = ...`: it names the unknown being answered.
inline bool names_unknown(const Answer& lhs) { return is_single_var(lhs.expr) || is_short_lhs(lhs.text); }

inline Verdict compare_unordered(const std::vector<Answer>& p, const std::vector<Answer>& r) {
  if (p.size() != r.size()) return Verdict::NotEqual;
  std::vector<char> used(r.size(), 0);
  bool unknown = false;
  for (const Answer& x : p) {
    bool matched = false;
    for (std::size_t j = 0; j < r.size() && !matched; ++j) {
      if (used[j]) continue;
      Verdict v = compare_answers(x, r[j]);
      if (v == Verdict::Equal) {
        used[j] = 1;
        matched = true;
      } else if (v == Verdict::Unknown) {
        unknown = true;
      }
    }
    if (!matched) return unknown ? Verdict::Unknown : Verdict::NotEqual;
  }
  return Verdict::Equal;
}

inline Verdict compare_ordered(const std::vector<Answer>& p, const std::vector<Answer>& r) {
  if (p.size() != r.size()) return Verdict::NotEqual;
  Verdict result = Verdict::Equal;
  for (std::size_t i = 0; i < p.size(); ++i) {
    Verdict v = compare_answers(p[i], r[i]);
    if (v == Verdict::NotEqual) return v;
    if (v == Verdict::Unknown) result = v;
  }
  return result;
}

inline Verdict compare_relations(const Answer& p, const Answer& r) {
  if (p.rel != r.rel) return Verdict::NotEqual;
  const Expr &pl = p.items[0].expr, &pr = p.items[1].expr, &rl = r.items[0].expr, &rr = r.items[1].expr;
  // Same unknown on the left (`x = 3`, `y = 2x+1`): compare the right-hand sides exactly.
  if (is_single_var(pl) && is_single_var(rl)) {
    if (pl.nodes[pl.root].var == rl.nodes[rl.root].var) {
      Verdict v = compare_expr(pr, rr);
      if (v == Verdict::Equal || (!pr.has_vars && !rr.has_vars)) return v;
    }
  }
  if (compare_expr(pl, rl) == Verdict::Equal && compare_expr(pr, rr) == Verdict::Equal) return Verdict::Equal;
  if (p.rel == "=" && compare_expr(pl, rr) == Verdict::Equal && compare_expr(pr, rl) == Verdict::Equal)
    return Verdict::Equal;
  return compare_proportional(combine(pl, pr, Op::Sub), combine(rl, rr, Op::Sub), p.rel == "<" || p.rel == "\\le");
}

inline std::string lower_copy(std::string_view s) { return lower(s); }

/// `x > 3` as the interval (3, \infty), `x \le 3` as (-\infty, 3], `x \ne 3` as (-\infty, 3) U (3, \infty):
/// a relation between one variable and a constant. False for other relations.
inline bool relation_as_interval(const Answer& rel, Answer& out) {
  const Answer &lhs = rel.items[0], &rhs = rel.items[1];
  const bool var_left = is_single_var(lhs.expr) && !rhs.expr.has_vars;
  if (!var_left && !(is_single_var(rhs.expr) && !lhs.expr.has_vars)) return false;
  const Answer& bound = var_left ? rhs : lhs;
  if (rel.rel == "\\ne") {
    out = real_line_without({bound});
    return true;
  }
  if (rel.rel != "<" && rel.rel != "\\le") return false;  // > and \ge were turned around by the parser
  const bool closed = rel.rel == "\\le";
  out = var_left ? interval_answer('(', infinity_answer(-1), bound, closed ? ']' : ')')
                 : interval_answer(closed ? '[' : '(', bound, infinity_answer(1), ')');
  return true;
}

inline bool is_interval_or_union(const Answer& a) {
  return a.kind == Answer::Kind::Seq && (a.open == 'U' || ((a.open == '(' || a.open == '[') && a.items.size() == 2));
}

inline Verdict compare_answers(const Answer& p, const Answer& r) {
  using K = Answer::Kind;
  if (p.kind == K::Unparsed || r.kind == K::Unparsed)
    return p.text == r.text ? Verdict::Equal : Verdict::Unknown;
  if (p.kind == K::Text || r.kind == K::Text) {
    if (lower(p.text) == lower(r.text)) return Verdict::Equal;
    return Verdict::NotEqual;
  }
  // A single-element set against a scalar: {3} vs 3.
  if (p.unordered() && p.items.size() == 1 && !r.unordered() && r.kind != K::Seq) return compare_answers(p.items[0], r);
  if (r.unordered() && r.items.size() == 1 && !p.unordered() && p.kind != K::Seq) return compare_answers(p, r.items[0]);
  if (p.kind == K::Seq && r.kind == K::Seq) {
    if (p.unordered() && r.unordered()) return compare_unordered(p.items, r.items);
    if (!p.unordered() && !r.unordered()) {
      if (p.open != r.open || p.close != r.close) return Verdict::NotEqual;
      return compare_ordered(p.items, r.items);
    }
    // A bare list against a parenthesised tuple: compare in order.
    const Answer& bare = p.unordered() ? p : r;
    const Answer& tuple = p.unordered() ? r : p;
    if (bare.open == 0 && tuple.open == '(' && tuple.close == ')') return compare_ordered(p.items, r.items);
    return Verdict::NotEqual;
  }
  if (p.kind == K::Matrix && r.kind == K::Matrix) {
    if (p.rows != r.rows || p.cols != r.cols) return Verdict::NotEqual;
    return compare_ordered(p.items, r.items);
  }
  // A column/row vector against a tuple.
  if ((p.kind == K::Matrix && r.kind == K::Seq) || (p.kind == K::Seq && r.kind == K::Matrix)) {
    const Answer& m = p.kind == K::Matrix ? p : r;
    const Answer& t = p.kind == K::Matrix ? r : p;
    if ((m.rows == 1 || m.cols == 1) && t.open == '(') return compare_ordered(p.items, r.items);
    return Verdict::NotEqual;
  }
  if (p.kind == K::Expr && r.kind == K::Expr) return compare_expr(p.expr, r.expr);
  if ((p.kind == K::Det && (r.kind == K::Expr || r.kind == K::Det)) || (r.kind == K::Det && p.kind == K::Expr))
    return compare_scalar_lanes(p, r);
  if (p.kind == K::Rel && r.kind == K::Rel) return compare_relations(p, r);
  // `x = 3` against `3`.
  if (p.kind == K::Rel && r.kind == K::Expr && p.rel == "=" && names_unknown(p.items[0]))
    return compare_expr(p.items[1].expr, r.expr);
  if (r.kind == K::Rel && p.kind == K::Expr && r.rel == "=" && names_unknown(r.items[0]))
    return compare_expr(p.expr, r.items[1].expr);
  // `x > 0` against `(0, \infty)`.
  Answer interval;
  if (p.kind == K::Rel && is_interval_or_union(r) && relation_as_interval(p, interval))
    return compare_answers(interval, r);
  if (r.kind == K::Rel && is_interval_or_union(p) && relation_as_interval(r, interval))
    return compare_answers(p, interval);
  return Verdict::NotEqual;
}

/// The choice letter of a multiple-choice answer: `C`, `(C)`, `C.`, `C)`; with `prefix`, also
/// a letter followed by its option text (`(C) 12`).
inline char choice_letter(std::string_view s, bool prefix) {
  if (s.empty()) return 0;
  std::size_t i = 0;
  bool paren = s[0] == '(';
  if (paren) ++i;
  if (i >= s.size() || s[i] < 'A' || s[i] > 'E') return 0;
  char letter = s[i++];
  if (paren) {
    if (i >= s.size() || s[i] != ')') return 0;
    ++i;
  } else if (i < s.size() && (s[i] == '.' || s[i] == ')' || s[i] == ':')) {
    ++i;
  }
  if (i == s.size()) return letter;
  if (!prefix) return 0;
  return (paren || s[i - 1] == '.' || s[i - 1] == ')' || s[i - 1] == ':') ? letter : 0;
}

}  // namespace detail

/// Decides whether `prediction` states the same answer as `reference` (see the header comment
/// for what is decided and what is Unknown). Thread-safe, no allocation beyond the call,
/// bounded cost for any input.
inline Verdict compare(std::string_view prediction, std::string_view reference) {
  using namespace detail;
  Normalized np = normalize_detail(prediction);
  Normalized nr = normalize_detail(reference);
  if (nr.text.empty()) return np.text.empty() ? Verdict::Equal : Verdict::Unknown;
  if (np.text.empty()) return Verdict::NotEqual;
  if (!np.noun.empty() && !nr.noun.empty() && np.noun != nr.noun) return Verdict::NotEqual;  // 2 dogs, 2 cats
  if (np.text == nr.text) return Verdict::Equal;
  if (char ref_letter = choice_letter(nr.text, false)) {
    return choice_letter(np.text, true) == ref_letter ? Verdict::Equal : Verdict::NotEqual;
  }
  if (np.text.size() > kMaxParseChars || nr.text.size() > kMaxParseChars) return Verdict::Unknown;
  if (is_wordy(np.text) && lower(np.text) == lower(nr.text)) return Verdict::Equal;  // "Yes" vs "yes", not X vs x
  VarTable vars;
  Answer ap = parse_answer(np.text, vars);
  Answer ar = parse_answer(nr.text, vars);
  Verdict v = compare_answers(ap, ar);
  if (v != Verdict::Equal && np.percent != nr.percent && ap.kind == Answer::Kind::Expr &&
      ar.kind == Answer::Kind::Expr) {
    Verdict scaled = np.percent ? compare_expr(scaled_percent(ap.expr), ar.expr)
                                : compare_expr(ap.expr, scaled_percent(ar.expr));
    if (scaled == Verdict::Equal) return scaled;
  }
  return v;
}

/// compare(...) == Verdict::Equal.
inline bool is_equiv(std::string_view prediction, std::string_view reference) {
  return compare(prediction, reference) == Verdict::Equal;
}

}  // namespace genprm::math
