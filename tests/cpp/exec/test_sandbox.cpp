// exec: SandboxPool semantics (GenPRM in-band texts, persistence, resets, async delivery,
// concurrency) and last_python_block. The adversarial cases live in tests/python/test_sandbox_*.
#include <doctest/doctest.h>

#include <signal.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "fast_options.hpp"
#include "genprm/exec/sandbox.hpp"

using genprm::CodeResult;
using genprm::SandboxOptions;
using genprm::SandboxPool;


TEST_CASE("last_python_block matches GenPRM's regex extraction") {
  struct Row {
    std::string text;
    std::optional<std::string> expected;
  };
  const std::vector<Row> rows = {
      {"no code here", std::nullopt},
      {"```python\nprint(1)\n```\n", "print(1)"},
      {"a ```python\nx=1\n``` b ```python\n  y = 2  \n\n```", "y = 2"},
      {"```python```", ""},
      {"```python\n\n```", ""},
      {"```python\nprint('a')\n```python\nprint('b')\n```", "print('a')"},
      {"```python\nunterminated", std::nullopt},
      {"```python\nfor i in range(2):\n    print(i)\n```", "for i in range(2):\n    print(i)"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.text);
    CHECK(genprm::last_python_block(row.text) == row.expected);
  }
}

TEST_CASE("a session keeps its namespace and reports errors in-band like GenPRM") {
  SandboxPool pool(fast_options());
  auto s = pool.open_session();
  CodeResult r = pool.run(s, "from fractions import Fraction\nx = Fraction(1, 3)\nprint(x + x)");
  CHECK(r.ok);
  CHECK_FALSE(r.timed_out);
  CHECK(r.output == "2/3");
  CHECK(pool.run(s, "print(x * 3)\n\n").output == "1");
  r = pool.run(s, "print('lost')\nundefined_name");
  CHECK_FALSE(r.ok);
  CHECK(r.output == "Code execute Error: NameError: name 'undefined_name' is not defined");
  CHECK(pool.run(s, "def f(:\n  pass").output ==
        "Code execute Error: SyntaxError: invalid syntax (<string>, line 1)");
  // a second session does not see the first one's names
  auto s2 = pool.open_session();
  CHECK(pool.run(s2, "print(x)").output ==
        "Code execute Error: NameError: name 'x' is not defined");
  CHECK(pool.run(s, "print('  padded  \\n')").output == "padded");
  pool.close_session(s);
  CHECK_THROWS_AS(pool.run(s, "print(1)"), genprm::ValueError);
}

TEST_CASE("timeouts: soft timeout keeps the namespace, a stubborn block loses its worker") {
  SandboxPool pool(fast_options());
  auto s = pool.open_session();
  pool.run(s, "keep = 41");
  CodeResult r = pool.run(s, "while True:\n    pass");
  CHECK(r.timed_out);
  CHECK(r.output == "Code execute time out: Code execution timed out");
  CHECK(r.seconds >= 0.9);
  r = pool.run(s, "print(keep + 1)");
  CHECK(r.output == "42");
  CHECK_FALSE(r.state_reset);
  // swallows TimeoutError: the host kills the process group after the grace period
  r = pool.run(s,
               "import time\nwhile True:\n    try:\n        time.sleep(10)\n"
               "    except BaseException:\n        pass");
  CHECK(r.timed_out);
  CHECK(r.output == "Code execute time out: Code execution timed out");
  CHECK(r.seconds < 1.0 + 0.3 + 0.5);
  r = pool.run(s, "print('after')");
  CHECK(r.state_reset);
  CHECK(r.output.find("state was reset") != std::string::npos);
  CHECK(r.output.substr(r.output.size() - 5) == "after");
  r = pool.run(s, "print(keep)");  // the namespace really is new, and the note is said once
  CHECK_FALSE(r.state_reset);
  CHECK(r.output == "Code execute Error: NameError: name 'keep' is not defined");
}

TEST_CASE("a crashing block is reported and the next block runs in a fresh worker") {
  SandboxPool pool(fast_options());
  auto s = pool.open_session();
  pool.run(s, "v = 1");
  long pid = pool.session_worker_pid(s);
  CHECK(pid > 0);
  CodeResult r = pool.run(s, "import os\nos.abort()");
  CHECK_FALSE(r.ok);
  CHECK(r.output.rfind("Code execute Error: SandboxCrash: ", 0) == 0);
  r = pool.run(s, "print('v' in globals())");
  CHECK(r.state_reset);
  CHECK(r.output.substr(r.output.size() - 5) == "False");
  CHECK(pool.session_worker_pid(s) != pid);
}

TEST_CASE("a worker that dies between blocks never signals the host (no SIGPIPE)") {
  SandboxPool pool(fast_options(1));
  auto s = pool.open_session();
  CodeResult r = pool.run(s, "v = 1");
  CHECK(r.ok);
  ::kill(static_cast<pid_t>(pool.session_worker_pid(s)), SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  r = pool.run(s, "print('v' in globals())");  // found dead before the write: runs fresh
  CHECK(r.state_reset);
  CHECK(r.output.find("between blocks") != std::string::npos);
  CHECK(r.output.substr(r.output.size() - 5) == "False");
}

TEST_CASE("a thread left running by a block ends its worker before the next block") {
  SandboxPool pool(fast_options(1));
  auto s = pool.open_session();
  CodeResult r = pool.run(s, "import os, threading\nthreading.Timer(5, os._exit, (1,)).start()");
  CHECK(r.ok);
  long pid = pool.session_worker_pid(s);
  CHECK(pid == -1);  // already ended
  r = pool.run(s, "print('next')");
  CHECK(r.state_reset);
  CHECK(r.output.find("thread") != std::string::npos);
  CHECK(r.output.substr(r.output.size() - 4) == "next");
}

TEST_CASE("submit is asynchronous, keeps per-session order, delivers on the polling thread") {
  SandboxPool pool(fast_options(3));
  std::vector<uint64_t> sessions;
  for (int i = 0; i < 3; ++i) sessions.push_back(pool.open_session());
  std::vector<std::vector<std::string>> got(3);
  const auto polling_thread = std::this_thread::get_id();
  bool wrong_thread = false;
  auto t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < 4; ++k) {
    for (int i = 0; i < 3; ++i) {
      std::string code = k == 0 ? "import time\nn = 0\ntime.sleep(0.2)\nprint(n)"
                                : "n += 1\nprint(n)";
      pool.submit(sessions[i], code, [&, i](CodeResult r) {
        wrong_thread |= std::this_thread::get_id() != polling_thread;
        got[i].push_back(r.output);
      });
    }
  }
  double submit_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(submit_s < 0.1);  // returns at once
  CHECK_FALSE(pool.idle());
  while (!pool.idle()) pool.wait_and_poll(1.0);
  double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK_FALSE(wrong_thread);
  for (int i = 0; i < 3; ++i) {
    CHECK(got[i] == std::vector<std::string>{"0", "1", "2", "3"});
  }
  CHECK(total_s < 3 * 0.2 + 0.5);  // the three sleeps overlapped (warm workers, 3 threads)
  CHECK(pool.poll() == 0);
}

TEST_CASE("max_live_workers ends the least recently used idle session's worker") {
  SandboxOptions o = fast_options(1);
  o.max_live_workers = 2;
  SandboxPool pool(o);
  auto a = pool.open_session(), b = pool.open_session(), c = pool.open_session();
  pool.run(a, "va = 1");
  pool.run(b, "vb = 2");
  CHECK(pool.run(a, "print(va)").output == "1");  // a is now more recent than b
  pool.run(c, "vc = 3");                            // needs a third worker: b loses its own
  CHECK(pool.session_worker_pid(b) == -1);
  CHECK(pool.run(a, "print(va)").output == "1");
  CodeResult r = pool.run(b, "print('vb' in globals())");
  CHECK(r.state_reset);
  CHECK(r.output.find("max_live_workers") != std::string::npos);
  CHECK(r.output.substr(r.output.size() - 5) == "False");
}

TEST_CASE("shutdown kills a running block and refuses new work") {
  SandboxOptions o = fast_options(1);
  o.timeout_s = 20;
  SandboxPool pool(o);
  auto s = pool.open_session();
  std::vector<CodeResult> got;
  pool.submit(s, "import time\ntime.sleep(20)", [&](CodeResult r) { got.push_back(r); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto t0 = std::chrono::steady_clock::now();
  pool.shutdown();
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(took < 5.0);
  CHECK(pool.poll() == 1);
  REQUIRE(got.size() == 1);
  CHECK_FALSE(got[0].ok);
  CHECK_THROWS_AS(pool.open_session(), genprm::Error);
  CHECK_THROWS_AS(pool.run(s, "print(1)"), genprm::Error);
  pool.shutdown();  // idempotent
}

TEST_CASE("options are validated and the isolation is described") {
  SandboxOptions bad = fast_options();
  bad.timeout_s = 0;
  CHECK_THROWS_AS(SandboxPool{bad}, genprm::ValueError);
  bad = fast_options();
  bad.python = "/nonexistent/python3";
  CHECK_THROWS_AS(SandboxPool{bad}, genprm::ValueError);
  SandboxPool pool(fast_options(1));
  std::string d = pool.describe_isolation();
  CHECK(d.find("rlimits:") != std::string::npos);
  CHECK(d.find("network namespace:") != std::string::npos);
  CHECK(d.find("seccomp:") != std::string::npos);
  CHECK_THROWS_AS(pool.run(12345, "print(1)"), genprm::ValueError);
}

TEST_CASE("PythonSandbox: one session, reset forgets the namespace") {
  genprm::PythonSandbox sb(fast_options());
  sb.run("import math\nr = math.isqrt(99)");
  CHECK(sb.run("print(r)").output == "9");
  sb.reset();
  CodeResult r = sb.run("print(r)");
  CHECK_FALSE(r.state_reset);  // an explicit reset is not announced
  CHECK(r.output == "Code execute Error: NameError: name 'r' is not defined");
  CHECK(sb.pool().options().workers == 1);
}
