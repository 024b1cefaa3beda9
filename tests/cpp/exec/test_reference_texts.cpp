// Every in-band text a block's run puts in front of the model, byte for byte. `reference` rows
// are the texts the GenPRM reference's CodeExecutor.execute produces for the block
// (redirect_stdout into an io.StringIO, `f.getvalue().strip()`, "Code execute Error: {Type}:
// {e}", "Code execute time out: {e}"; tests/python/test_reference_texts.py checks the same
// blocks against that code run by CPython). Rows marked `ours` are the deliberate differences of
// docs/reference-differences.md (where the reference would stop the whole run instead).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "fast_options.hpp"
#include "genprm/exec/sandbox.hpp"

using genprm::CodeResult;
using genprm::SandboxOptions;
using genprm::SandboxPool;

namespace {

struct TextRow {
  const char* what;
  std::string code;
  std::string expected;  // exact text ("" : empty output)
  bool ok;
  bool timed_out;
  bool reference;  // false: one of our deliberate differences
};

// clang-format off
const std::vector<TextRow> kRows = {
    {"stdout stripped", "print('  3  ')\nprint()", "3", true, false, true},
    {"Unicode whitespace stripped from stdout as str.strip() does",
     "print('\\u3000\\u00a0x y\\u2028\\x1c')", "x y", true, false, true},
    {"no output", "x = 1", "", true, false, true},
    {"stderr is not captured", "import sys\nprint('e', file=sys.stderr)", "", true, false, true},
    {"exception (the block's stdout is dropped)", "print('lost')\n1/0",
     "Code execute Error: ZeroDivisionError: division by zero", false, false, true},
    {"NameError", "print(undefined_name)",
     "Code execute Error: NameError: name 'undefined_name' is not defined", false, false, true},
    {"KeyError", "{}['k']", "Code execute Error: KeyError: 'k'", false, false, true},
    {"AssertionError without message", "assert 1 == 2", "Code execute Error: AssertionError: ", false,
     false, true},
    {"multi-line message", "raise ValueError('a\\nb')", "Code execute Error: ValueError: a\nb", false,
     false, true},
    {"user-defined exception", "class Oops(Exception):\n    pass\nraise Oops('m')",
     "Code execute Error: Oops: m", false, false, true},
    {"SyntaxError", "def f(:\n  pass",
     "Code execute Error: SyntaxError: invalid syntax (<string>, line 1)", false, false, true},
    {"U+00A0 inside the code", "x =\u00a01",
     "Code execute Error: SyntaxError: invalid non-printable character U+00A0 (<string>, line 1)", false,
     false, true},
    {"sys.stdout.buffer names io.StringIO", "import sys\nsys.stdout.buffer.write(b'x')",
     "Code execute Error: AttributeError: '_io.StringIO' object has no attribute 'buffer'", false, false,
     true},
    {"sys.stdout.reconfigure names io.StringIO", "import sys\nsys.stdout.reconfigure(encoding='utf-8')",
     "Code execute Error: AttributeError: '_io.StringIO' object has no attribute 'reconfigure'", false,
     false, true},
    {"sys.stdout.fileno()", "import sys\nsys.stdout.fileno()",
     "Code execute Error: UnsupportedOperation: fileno", false, false, true},
    {"writing bytes to stdout", "import sys\nsys.stdout.write(b'x')",
     "Code execute Error: TypeError: string argument expected, got 'bytes'", false, false, true},
    {"type and class of stdout", "import sys, io\nprint(type(sys.stdout), isinstance(sys.stdout, io.StringIO))",
     "<class '_io.StringIO'> True", true, false, true},
    {"repr of stdout", "import sys\nprint(repr(sys.stdout)[:26])", "<_io.StringIO object at 0x", true,
     false, true},
    {"stdout's encoding", "import sys\nprint(sys.stdout.encoding, sys.stdout.closed)", "None False", true,
     false, true},
    {"reading back stdout", "import sys\nprint('a')\nv = sys.stdout.getvalue()\nprint(repr(v))",
     "a\n'a\\n'", true, false, true},
    {"a closed stdout fails in getvalue()", "import sys\nsys.stdout.close()",
     "Code execute Error: ValueError: I/O operation on closed file", false, false, true},
    {"soft timeout", "while True:\n    pass", "Code execute time out: Code execution timed out", false,
     true, true},
    {"TimeoutError raised by the block", "raise TimeoutError('slow')", "Code execute time out: slow",
     false, true, true},
    {"SystemExit is reported in-band (the reference's run would exit)", "import sys\nsys.exit(3)",
     "Code execute Error: SystemExit: 3", false, false, false},
    {"KeyboardInterrupt is reported in-band (the reference's run would stop)", "raise KeyboardInterrupt",
     "Code execute Error: KeyboardInterrupt: ", false, false, false},
    {"a lone surrogate printed (the reference's str keeps it; our reply is UTF-8)", "print('\\ud800')",
     "?", true, false, false},
    {"an unprintable message (the reference's execute would raise)",
     "class E(Exception):\n    def __str__(self):\n        raise RuntimeError()\nraise E()",
     "Code execute Error: E: <unprintable message>", false, false, false},
};
// clang-format on

SandboxOptions options(size_t max_output_bytes = SandboxOptions{}.max_output_bytes) {
  SandboxOptions o = fast_options(1);
  o.max_output_bytes = max_output_bytes;
  return o;
}

}  // namespace

TEST_CASE("in-band texts: each case's exact text, the reference's unless marked ours") {
  SandboxPool pool(options());
  auto s = pool.open_session();
  for (const TextRow& row : kRows) {
    CAPTURE(row.what);
    CAPTURE(row.reference);
    const CodeResult r = pool.run(s, row.code);
    CHECK(r.output == row.expected);
    CHECK(r.ok == row.ok);
    CHECK(r.timed_out == row.timed_out);
    CHECK_FALSE(r.state_reset);  // every row keeps the session's worker
  }
}

TEST_CASE("in-band texts: the output cap's marker (ours: the reference keeps everything)") {
  SandboxPool pool(options(8));
  auto s = pool.open_session();
  CHECK(pool.run(s, "print('0123456789abc')").output ==
        "01234567\n[output truncated: 6 more characters not shown]");
  CHECK(pool.run(s, "print('short')").output == "short");  // the cap is per block
}

TEST_CASE("a block fenced with Unicode whitespace runs (the reference's \\s and strip())") {
  SandboxPool pool(options());
  auto s = pool.open_session();
  for (const char* w : {"\u00a0", "\u3000", "\u2028", "\u0085", "\u202f", "\x1c"}) {
    CAPTURE(w);
    const std::string text = std::string("```python") + w + "\nprint(6 * 7)" + w + "\n" + w + "```\n";
    const auto code = genprm::last_python_block(text);
    REQUIRE(code.has_value());
    CHECK(pool.run(s, *code).output == "42");
  }
}
